"""The SQL side of the audit trail: an append-only table written in the caller's
transaction."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import database_errors
from adapters.sqlalchemy.records_audit import AuditRecord
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from core.audit.model import AuditEntry, AuditOutcome
from core.audit.ports import AuditLog
from core.shared.query import ListQuery, Page, SortKey

# Kept, never filtered or sorted on (JSON comparisons differ per database; the user
# agent is free text from the client).
PRIVATE_AUDIT_FIELDS = ("details", "user_agent")
NEWEST_FIRST = (SortKey("occurred_at", descending=True), SortKey("id", descending=True))


def _to_entry(record: AuditRecord) -> AuditEntry:
    return AuditEntry(
        id=record.id,
        action=record.action,
        outcome=AuditOutcome(record.outcome),
        occurred_at=record.occurred_at,
        actor_id=record.actor_id,
        target_type=record.target_type,
        target_id=record.target_id,
        ip=record.ip,
        user_agent=record.user_agent,
        details=dict(record.details or {}),
    )


class SqlAlchemyAuditLog(AuditLog):
    """`AuditLog` on the `audit_log` table (see the port for the contract).

    `record` is one INSERT in the unit of work's session (no ORM object kept around);
    the row commits or rolls back with the change it describes.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, AuditRecord, private_fields=PRIVATE_AUDIT_FIELDS
        )

    async def record(self, entry: AuditEntry) -> None:
        entry.check()
        values = {
            "occurred_at": entry.occurred_at,
            "actor_id": entry.actor_id,
            "action": entry.action,
            "outcome": entry.outcome.value,
            "target_type": entry.target_type,
            "target_id": entry.target_id,
            "ip": entry.ip,
            "user_agent": entry.user_agent,
            "details": dict(entry.details),
        }
        with database_errors():
            await self._session.execute(insert(AuditRecord).values(**values))

    async def list(self, query: ListQuery) -> Page[AuditEntry]:
        if not query.sort:
            query = replace(query, sort=NEWEST_FIRST)
        page = await self._records.list(query)
        return Page(
            items=[_to_entry(record) for record in page.items],
            next_cursor=page.next_cursor,
            total=page.total,
        )

"""The audit trail in process memory, transactional like the SQL table."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime

from adapters.memory.query import QueryEvaluator
from adapters.memory.transaction import PendingWrites
from core.audit.model import AuditEntry
from core.audit.ports import AuditLog
from core.shared.query import ListQuery, Page, SortKey

# The fields a query may name: as in the SQL adapter, `details` and `user_agent` are
# kept but never filtered or sorted on.
_AUDIT_QUERIES = QueryEvaluator(
    {
        "id": int,
        "occurred_at": datetime,
        "actor_id": int,
        "action": str,
        "outcome": str,
        "target_type": str,
        "target_id": str,
        "ip": str,
    },
    pk="id",
)
NEWEST_FIRST = (SortKey("occurred_at", descending=True), SortKey("id", descending=True))


@dataclass
class InMemoryAuditState:
    """The committed entries every unit of work of one factory shares."""

    entries: list[AuditEntry] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class InMemoryAuditLog(AuditLog, PendingWrites):
    """`AuditLog` over an `InMemoryAuditState` (see the port for the contract).

    Entries recorded in a unit of work are kept apart until it commits (its own `list`
    sees them); ids come from a sequence that, as in a database, skips the ids of
    rolled-back entries.
    """

    def __init__(self, state: InMemoryAuditState) -> None:
        self._state = state
        self._pending: list[AuditEntry] = []

    async def record(self, entry: AuditEntry) -> None:
        entry.check()
        # `replace` runs the entry's own checks again and copies `details`.
        self._pending.append(replace(entry, id=next(self._state.ids)))

    async def list(self, query: ListQuery) -> Page[AuditEntry]:
        if not query.sort:
            query = replace(query, sort=NEWEST_FIRST)
        page = _AUDIT_QUERIES.page([*self._state.entries, *self._pending], query)
        return Page(items=[replace(e) for e in page.items], next_cursor=page.next_cursor)

    def _commit(self) -> None:
        """Apply the pending entries; the caller holds the state's lock."""
        self._state.entries.extend(self._pending)
        self._pending.clear()

    def _rollback(self) -> None:
        self._pending.clear()

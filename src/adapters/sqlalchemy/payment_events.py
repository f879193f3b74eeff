"""The SQL side of the gateway's events: the event log and the reconciliation runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records import utcnow
from adapters.sqlalchemy.records_payment_events import (
    WEBHOOK_EVENTS_PK,
    ReconciliationRecord,
    WebhookEventRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.returning import write
from core.payments.errors import EventExistsError, EventNotFoundError
from core.payments.model import EventOutcome, EventSource, Reconciliation, StoredEvent
from core.payments.ports import ReconciliationLog, WebhookEventRepository
from core.shared.query import ListQuery, Page, PageRequest, SortKey

EVENT_CONSTRAINT_ERRORS: ConstraintErrors = {
    WEBHOOK_EVENTS_PK: EventExistsError,
}

_events = cast(Table, WebhookEventRecord.__table__)
_reconciliations = cast(Table, ReconciliationRecord.__table__)
_NEWEST_FIRST = (SortKey("created", descending=True), SortKey("id", descending=True))


def _storable(value: Any) -> Any:
    """A JSON value as every database keeps it: Postgres's JSONB refuses the NUL
    character in text, so it becomes U+FFFD (in keys and values) on every adapter."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value


def _to_event(record: WebhookEventRecord | Row[Any]) -> StoredEvent:
    return StoredEvent(
        id=record.id,
        type=record.type,
        created=record.created,
        payload=dict(record.payload),
        source=EventSource(record.source),
        outcome=EventOutcome(record.outcome),
        received_at=record.received_at,
        processed_at=record.processed_at,
        error=record.error,
        attempts=record.attempts,
    )


class SqlAlchemyWebhookEventRepository(WebhookEventRepository):
    """`WebhookEventRepository` on `webhook_events` (contract: the port).

    The event id is the primary key, and it decides duplicates: the second INSERT of
    an id raises `EventExistsError`, in a SAVEPOINT (the unit stays usable); on
    Postgres a concurrent one waits for the first unit, then fails if it committed or
    goes through if it rolled back. Should a violation surface only at commit, the unit
    of work maps it to `EventExistsError` too. The payload is stored as JSON (JSONB on
    Postgres: key order and whitespace are not kept, values are, but for the NUL
    character, which JSONB cannot hold: it is stored as U+FFFD). `update` of an unknown
    id is `EventNotFoundError`.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, WebhookEventRecord, constraint_errors=EVENT_CONSTRAINT_ERRORS
        )

    async def get(self, event_id: str) -> StoredEvent | None:
        record = await self._records.get(event_id)
        return _to_event(record) if record is not None else None

    async def add(self, event: StoredEvent) -> StoredEvent:
        statement = (
            insert(_events)
            .values(
                id=event.id,
                type=event.type,
                created=event.created,
                payload=_storable(event.payload),
                source=event.source.value,
                outcome=event.outcome.value,
                received_at=utcnow(),
                processed_at=event.processed_at,
                error=event.error,
                attempts=event.attempts,
            )
            .returning(*_events.c)
        )
        row = await write(self._session, statement, EVENT_CONSTRAINT_ERRORS, savepoint=True)
        assert row is not None
        return _to_event(row)

    async def update(self, event: StoredEvent) -> StoredEvent:
        statement = (
            update(_events)
            .where(_events.c.id == event.id)
            .values(
                outcome=event.outcome.value,
                processed_at=event.processed_at,
                error=event.error,
                attempts=event.attempts,
            )
            .returning(*_events.c)
        )
        row = await write(self._session, statement, EVENT_CONSTRAINT_ERRORS)
        if row is None:
            raise EventNotFoundError()
        return _to_event(row)

    async def list(self, page: PageRequest) -> Page[StoredEvent]:
        found = await self._records.list(ListQuery(sort=_NEWEST_FIRST, page=page))
        return Page(
            items=[_to_event(record) for record in found.items], next_cursor=found.next_cursor
        )


def _to_run(record: ReconciliationRecord | Row[Any]) -> Reconciliation:
    return Reconciliation(
        id=record.id,
        since=record.since,
        until=record.until,
        found=record.found,
        applied=record.applied,
    )


class SqlAlchemyReconciliationLog(ReconciliationLog):
    """`ReconciliationLog` on `payment_reconciliations` (contract: the port). `last()`
    breaks a tie on `until` by the later run (the higher id)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, run: Reconciliation) -> Reconciliation:
        statement = (
            insert(_reconciliations)
            .values(since=run.since, until=run.until, found=run.found, applied=run.applied)
            .returning(*_reconciliations.c)
        )
        row = await write(self._session, statement, {})
        assert row is not None
        return _to_run(row)

    async def last(self) -> Reconciliation | None:
        statement = (
            select(_reconciliations)
            .order_by(_reconciliations.c.until.desc(), _reconciliations.c.id.desc())
            .limit(1)
        )
        with database_errors():
            row = (await self._session.execute(statement)).first()
        return _to_run(row) if row is not None else None

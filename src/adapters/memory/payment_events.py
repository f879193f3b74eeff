"""The gateway's event log and the reconciliation runs in process memory, transactional
like the SQL tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from adapters.memory.pending_rows import PendingRows, RowTable
from adapters.memory.query import QueryEvaluator, dataclass_field_types
from core.payments.errors import EventExistsError, EventNotFoundError
from core.payments.model import Reconciliation, StoredEvent
from core.payments.ports import ReconciliationLog, WebhookEventRepository
from core.shared.errors import ConflictError
from core.shared.query import ListQuery, Page, PageRequest, SortKey

_EVENT_QUERIES = QueryEvaluator(dataclass_field_types(StoredEvent), pk="id")
_NEWEST_FIRST = (SortKey("created", descending=True), SortKey("id", descending=True))


class InMemoryWebhookEventState(RowTable[str, StoredEvent]):
    """The committed events, by the gateway's event id."""


class InMemoryReconciliationState(RowTable[int, Reconciliation]):
    """The committed reconciliation runs, by id."""


def _storable(value: Any) -> Any:
    # As the SQL adapter stores it: Postgres's JSONB refuses the NUL character in text,
    # so it becomes U+FFFD (in keys and values) on every adapter.
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value


def _json(payload: Mapping[str, Any]) -> dict[str, Any]:
    # What a JSON column gives back: a new dict, values as JSON has them (tuples become
    # lists, keys strings), so no caller shares or changes the stored one.
    copied: dict[str, Any] = json.loads(json.dumps(_storable(payload)))
    return copied


def _out(event: StoredEvent) -> StoredEvent:
    return event.copy(payload=_json(event.payload))


def _check_attempts(event: StoredEvent) -> None:
    # The SQL table's CHECK.
    if event.attempts < 0:
        raise ConflictError("An event's attempts cannot be negative.")


class InMemoryWebhookEventRepository(PendingRows[str, StoredEvent], WebhookEventRepository):
    """`WebhookEventRepository` over an `InMemoryWebhookEventState` (contract: the port).

    The event id is checked at `add` against what this unit sees and again at commit
    against what others committed meanwhile (`EventExistsError`): of two units adding
    one id, the second to commit fails and applies nothing. `update` locks the event
    until the unit ends. Payloads are copied in and out through JSON, as a JSON column
    stores them (a NUL character becomes U+FFFD, as in SQL).
    """

    def __init__(self, state: InMemoryWebhookEventState) -> None:
        super().__init__(state, key=lambda event: event.id, exists_error=EventExistsError)

    async def get(self, event_id: str) -> StoredEvent | None:
        found = self._get(event_id)
        return _out(found) if found is not None else None

    async def add(self, event: StoredEvent) -> StoredEvent:
        _check_attempts(event)
        stored = event.copy(payload=_json(event.payload), received_at=datetime.now(UTC))
        return _out(self._insert(stored))

    async def update(self, event: StoredEvent) -> StoredEvent:
        if self._get(event.id) is None:
            raise EventNotFoundError()
        await self._hold(event.id)
        current = self._get(event.id)
        assert current is not None
        _check_attempts(event)
        changed = current.copy(
            outcome=event.outcome,
            processed_at=event.processed_at,
            error=event.error,
            attempts=event.attempts,
        )
        return _out(self._replace(changed))

    async def list(self, page: PageRequest) -> Page[StoredEvent]:
        found = _EVENT_QUERIES.page(self._rows(), ListQuery(sort=_NEWEST_FIRST, page=page))
        return Page(items=[_out(event) for event in found.items], next_cursor=found.next_cursor)


class InMemoryReconciliationLog(PendingRows[int, Reconciliation], ReconciliationLog):
    """`ReconciliationLog` over an `InMemoryReconciliationState` (contract: the port).
    `last()` breaks a tie on `until` by the later run (the higher id)."""

    def __init__(self, state: InMemoryReconciliationState) -> None:
        super().__init__(state, key=lambda run: run.id or 0, exists_error=ConflictError)

    async def add(self, run: Reconciliation) -> Reconciliation:
        if run.found < 0 or run.applied < 0:
            raise ConflictError("A reconciliation's counts cannot be negative.")
        return self._insert(replace(run, id=next(self._table.ids)))

    async def last(self) -> Reconciliation | None:
        return max(self._rows(), key=lambda run: (run.until, run.id or 0), default=None)

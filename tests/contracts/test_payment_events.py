"""The `WebhookEventRepository` and `ReconciliationLog` contracts, through the payments
unit of work, on every adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.sqlalchemy.records_payment_events import WebhookEventRecord
from core.identity.ports import IdentityUnitOfWorkFactory
from core.payments.errors import EventExistsError, EventNotFoundError
from core.payments.model import (
    EventOutcome,
    EventSource,
    Payment,
    PaymentKind,
    PaymentStatus,
    Reconciliation,
    StoredEvent,
)
from core.payments.ports import PaymentsUnitOfWorkFactory
from core.shared.errors import ConflictError
from core.shared.query import PageRequest
from tests.contracts.test_one_time_tokens import add_users
from tests.contracts.test_payment_records import recent

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PAYLOAD: dict[str, Any] = {
    "id": "evt_1",
    "object": "event",
    "type": "invoice.paid",
    "livemode": False,
    "pending_webhooks": 1,
    "request": {"id": None, "idempotency_key": "co_1:checkout"},
    "data": {
        "object": {
            "id": "in_1",
            "amount_paid": 2900,
            "lines": {"data": [{"price": {"id": "price_pro"}, "quantity": 1}], "has_more": False},
            "metadata": {"note": "Grüße, café ☕ — 日本語 \U0001f680", "empty": ""},
            "ratio": 0.25,
            "big": 2**53 + 1,
        }
    },
}


def event(event_id: str = "evt_1", **changes: Any) -> StoredEvent:
    changes.setdefault("type", "invoice.paid")
    changes.setdefault("created", NOW)
    changes.setdefault("payload", {**PAYLOAD, "id": event_id})
    changes.setdefault("source", EventSource.WEBHOOK)
    changes.setdefault("outcome", EventOutcome.APPLIED)
    return StoredEvent(id=event_id, **changes)


async def add_events(uow: PaymentsUnitOfWorkFactory, *items: StoredEvent) -> list[StoredEvent]:
    async with uow() as tx:
        stored = [await tx.webhook_events.add(item) for item in items]
        await tx.commit()
    return stored


async def get_event(uow: PaymentsUnitOfWorkFactory, event_id: str) -> StoredEvent | None:
    async with uow(read_only=True) as tx:
        return await tx.webhook_events.get(event_id)


async def test_add_stamps_the_event_and_get_returns_it_whole(
    payments_uow: PaymentsUnitOfWorkFactory,
) -> None:
    wanted = event(
        "evt_1NXa",
        type="charge.refunded",
        created=NOW - timedelta(microseconds=3),
        source=EventSource.RECONCILE,
        outcome=EventOutcome.FAILED,
        processed_at=NOW,
        error="UnavailableError: the gateway is down",
        attempts=3,
    )
    (stored,) = await add_events(payments_uow, wanted)
    assert recent(stored.received_at)
    assert stored == wanted.copy(received_at=stored.received_at)
    found = await get_event(payments_uow, "evt_1NXa")
    assert found == stored
    # The payload comes back as sent: nested objects, lists, unicode, numbers, nulls.
    assert found.payload == {**PAYLOAD, "id": "evt_1NXa"}
    assert found.payload["data"]["object"]["metadata"]["note"] == "Grüße, café ☕ — 日本語 🚀"
    assert found.payload["data"]["object"]["big"] == 2**53 + 1
    assert (found.source, found.outcome) == (EventSource.RECONCILE, EventOutcome.FAILED)
    assert await get_event(payments_uow, "evt_other") is None


async def test_a_stored_payload_is_not_shared_with_callers(
    payments_uow: PaymentsUnitOfWorkFactory,
) -> None:
    payload: dict[str, Any] = {"data": {"object": {"id": "in_1"}}}
    async with payments_uow() as tx:
        stored = await tx.webhook_events.add(event(payload=payload))
        payload["data"]["object"]["id"] = "changed"
        stored.payload["data"]["object"]["id"] = "changed too"
        await tx.commit()
    found = await get_event(payments_uow, "evt_1")
    assert found is not None and found.payload == {"data": {"object": {"id": "in_1"}}}


async def test_a_nul_character_is_stored_as_the_replacement_character(
    payments_uow: PaymentsUnitOfWorkFactory,
) -> None:
    # Postgres's JSONB cannot hold U+0000; every adapter stores U+FFFD instead, so an
    # event carrying one (a customer's name) is still stored, not refused.
    payload = {"name\x00": ["a\x00b", {"c": "\x00"}], "n": 1}
    await add_events(payments_uow, event(payload=payload))
    found = await get_event(payments_uow, "evt_1")
    assert found is not None
    assert found.payload == {"name\ufffd": ["a\ufffdb", {"c": "\ufffd"}], "n": 1}


async def test_an_event_id_is_stored_once(payments_uow: PaymentsUnitOfWorkFactory) -> None:
    (first,) = await add_events(payments_uow, event())
    with pytest.raises(EventExistsError):
        await add_events(payments_uow, event(type="other.type"))
    async with payments_uow() as tx:
        await tx.webhook_events.add(event("evt_2"))
        with pytest.raises(EventExistsError):
            await tx.webhook_events.add(event("evt_2"))
        await tx.commit()
    assert await get_event(payments_uow, "evt_1") == first
    assert await get_event(payments_uow, "evt_2") is not None


async def test_of_deliveries_racing_with_one_event_exactly_one_takes_effect(
    identity_uow: IdentityUnitOfWorkFactory, payments_uow: PaymentsUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)

    async def deliver(n: int) -> bool:
        # The event is stored before its effect, in one unit: a duplicate is refused at
        # `add` or, at the latest, at commit; either way its effect is not kept.
        try:
            async with payments_uow() as tx:
                await tx.webhook_events.add(event("evt_raced", error=f"delivery {n}"))
                await tx.payments.add(
                    Payment(
                        user_id=alice,
                        reference=f"in_{n}",
                        kind=PaymentKind.SUBSCRIPTION,
                        amount=1,
                        currency="usd",
                        status=PaymentStatus.SUCCEEDED,
                    )
                )
                await asyncio.sleep(0.02)  # overlap the units
                await tx.commit()
        except EventExistsError:
            return False
        return True

    results = await asyncio.gather(*(deliver(n) for n in range(4)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert (await get_event(payments_uow, "evt_raced")).error == f"delivery {winner}"  # type: ignore[union-attr]
    async with payments_uow(read_only=True) as tx:
        page = await tx.payments.for_user(alice, PageRequest())
    assert [item.reference for item in page.items] == [f"in_{winner}"]


async def test_a_duplicate_found_only_at_commit_is_an_event_exists_error(
    identity_backend: tuple[str, str | None], payments_uow: PaymentsUnitOfWorkFactory
) -> None:
    (stored,) = await add_events(payments_uow, event())
    async with payments_uow() as tx:
        if identity_backend[0] == "memory":
            # In memory a unit sees nothing of another's uncommitted add: the commit
            # is where a duplicate is found.
            await tx.webhook_events.add(event("evt_2"))
            await add_events(payments_uow, event("evt_2"))
        else:
            # The SQL repositories write at once; a row left for the commit's flush
            # (the ORM's way) must fail the same way there.
            session = tx._session  # type: ignore[attr-defined]
            session.add(
                WebhookEventRecord(
                    id="evt_1",
                    type="invoice.paid",
                    created=NOW,
                    payload={},
                    source="webhook",
                    outcome="applied",
                    received_at=NOW,
                )
            )
        with pytest.raises(EventExistsError):
            await tx.commit()
    assert await get_event(payments_uow, "evt_1") == stored


async def test_update_writes_the_outcome_only(payments_uow: PaymentsUnitOfWorkFactory) -> None:
    (stored,) = await add_events(payments_uow, event(outcome=EventOutcome.FAILED, error="boom"))
    async with payments_uow() as tx:
        changed = await tx.webhook_events.update(
            event(
                type="changed.type",
                created=NOW + timedelta(days=1),
                payload={"changed": True},
                source=EventSource.RECONCILE,
                outcome=EventOutcome.APPLIED,
                received_at=NOW,
                processed_at=NOW + timedelta(seconds=5),
                error=None,
                attempts=2,
            )
        )
        await tx.commit()
    expected = stored.copy(
        outcome=EventOutcome.APPLIED,
        processed_at=NOW + timedelta(seconds=5),
        error=None,
        attempts=2,
    )
    assert changed == expected
    assert await get_event(payments_uow, "evt_1") == expected
    with pytest.raises(EventNotFoundError):
        async with payments_uow() as tx:
            await tx.webhook_events.update(event("evt_unknown"))
    with pytest.raises(ConflictError):
        async with payments_uow() as tx:
            await tx.webhook_events.update(stored.copy(attempts=-1))
            await tx.commit()
    assert await get_event(payments_uow, "evt_1") == expected


async def test_events_are_not_stored_before_commit(
    payments_uow: PaymentsUnitOfWorkFactory,
) -> None:
    async with payments_uow() as tx:
        added = await tx.webhook_events.add(event())
        assert await tx.webhook_events.get("evt_1") == added
    assert await get_event(payments_uow, "evt_1") is None
    (stored,) = await add_events(payments_uow, event(outcome=EventOutcome.FAILED))
    async with payments_uow() as tx:
        await tx.webhook_events.update(stored.copy(outcome=EventOutcome.APPLIED))
        await tx.webhook_events.add(event("evt_2"))
        await tx.rollback()
    assert await get_event(payments_uow, "evt_1") == stored
    assert await get_event(payments_uow, "evt_2") is None


async def test_the_log_is_paged_newest_first(payments_uow: PaymentsUnitOfWorkFactory) -> None:
    minute = timedelta(minutes=1)
    await add_events(
        payments_uow,
        event("evt_c", created=NOW - 3 * minute),
        event("evt_a", created=NOW),
        event("evt_e", created=NOW - 5 * minute),
        event("evt_b1", created=NOW - minute),
        event("evt_b2", created=NOW - minute),
        event("evt_d", created=NOW - 4 * minute),
        event("evt_f", created=NOW - 9 * minute),
    )
    pages = []
    cursor = None
    async with payments_uow(read_only=True) as tx:
        while True:
            page = await tx.webhook_events.list(PageRequest(limit=3, cursor=cursor))
            pages.append([item.id for item in page.items])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        whole = await tx.webhook_events.list(PageRequest(limit=7))
    # Equal creation times: the greater id first.
    assert pages == [["evt_a", "evt_b2", "evt_b1"], ["evt_c", "evt_d", "evt_e"], ["evt_f"]]
    assert whole.next_cursor is None and whole.items[0].payload == {**PAYLOAD, "id": "evt_a"}


# --- reconciliation runs -----------------------------------------------------------------


async def test_last_is_the_run_that_reached_furthest(
    payments_uow: PaymentsUnitOfWorkFactory,
) -> None:
    async with payments_uow(read_only=True) as tx:
        assert await tx.reconciliations.last() is None
    hour = timedelta(hours=1)
    async with payments_uow() as tx:
        first = await tx.reconciliations.add(
            Reconciliation(NOW - 2 * hour, NOW, found=5, applied=2)
        )
        # Added later, reaching less far (a rerun of an older window).
        older = await tx.reconciliations.add(Reconciliation(NOW - 3 * hour, NOW - hour, 1, 0))
        await tx.commit()
    assert first.id is not None and older.id is not None and first.id != older.id
    assert first == Reconciliation(NOW - 2 * hour, NOW, found=5, applied=2, id=first.id)
    async with payments_uow(read_only=True) as tx:
        assert await tx.reconciliations.last() == first
    # The same end: the later run.
    async with payments_uow() as tx:
        again = await tx.reconciliations.add(Reconciliation(NOW - hour, NOW, found=0, applied=0))
        assert await tx.reconciliations.last() == again
    # ...once committed: this one was not.
    async with payments_uow(read_only=True) as tx:
        assert await tx.reconciliations.last() == first
    with pytest.raises(ConflictError):
        async with payments_uow() as tx:
            await tx.reconciliations.add(Reconciliation(NOW, NOW + hour, found=-1, applied=0))
            await tx.commit()

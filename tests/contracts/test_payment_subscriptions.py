"""The `SubscriptionRepository` contract, through the payments unit of work, on every
adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.identity.errors import UserNotFoundError
from core.identity.ports import IdentityUnitOfWorkFactory
from core.payments.model import Subscription, SubscriptionStatus
from core.payments.ports import PaymentsUnitOfWorkFactory
from tests.contracts.test_one_time_tokens import add_users
from tests.contracts.test_payment_records import recent

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
S = SubscriptionStatus


@pytest.fixture
async def users(identity_uow: IdentityUnitOfWorkFactory) -> list[int]:
    return await add_users(identity_uow, 2)


def subscription(user_id: int, gateway_id: str = "sub_1", **changes: Any) -> Subscription:
    changes.setdefault("gateway_customer_id", f"cus_{user_id}")
    changes.setdefault("tier_code", "pro")
    changes.setdefault("status", S.ACTIVE)
    return Subscription(user_id=user_id, gateway_subscription_id=gateway_id, **changes)


async def save(uow: PaymentsUnitOfWorkFactory, *items: Subscription) -> list[Subscription]:
    async with uow() as tx:
        saved = [await tx.subscriptions.save(item) for item in items]
        await tx.commit()
    return saved


async def locked(uow: PaymentsUnitOfWorkFactory, gateway_id: str) -> Subscription | None:
    async with uow() as tx:
        return await tx.subscriptions.lock(gateway_id)


def ids(items: list[Subscription]) -> list[str]:
    return [item.gateway_subscription_id for item in items]


async def test_save_inserts_a_subscription_with_every_field(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    wanted = subscription(
        users[0],
        "sub_1Pq",
        gateway_customer_id="cus_9",
        tier_code="team",
        status=S.PAST_DUE,
        current_period_end=NOW + 30 * DAY,
        cancel_at_period_end=True,
        scheduled_tier_code="pro",
        past_due_since=NOW - DAY,
        canceled_at=NOW - timedelta(hours=1),
        synced_at=NOW + timedelta(microseconds=7),
    )
    (saved,) = await save(payments_uow, wanted)
    assert saved.id is not None and recent(saved.created_at)
    assert saved.updated_at == saved.created_at
    assert saved == wanted.copy(
        id=saved.id, created_at=saved.created_at, updated_at=saved.updated_at
    )
    assert await locked(payments_uow, "sub_1Pq") == saved
    assert await locked(payments_uow, "sub_other") is None
    (other,) = await save(payments_uow, subscription(users[1], "sub_2"))
    assert other.id != saved.id


async def test_saving_again_replaces_every_field_and_keeps_the_row(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    (first,) = await save(
        payments_uow,
        subscription(alice, scheduled_tier_code="free", past_due_since=NOW, canceled_at=NOW),
    )
    await asyncio.sleep(0.002)
    replacement = subscription(
        bob,
        gateway_customer_id="cus_new",
        tier_code="team",
        status=S.TRIALING,
        current_period_end=NOW + DAY,
        cancel_at_period_end=True,
        synced_at=NOW,
        id=9999,
        created_at=NOW,
        updated_at=NOW,
    )
    (again,) = await save(payments_uow, replacement)
    assert again.updated_at is not None and again.updated_at > first.updated_at  # type: ignore[operator]
    # Every field replaced (NULLs too), but the id and creation time are the row's.
    assert again == replacement.copy(
        id=first.id, created_at=first.created_at, updated_at=again.updated_at
    )
    assert await locked(payments_uow, "sub_1") == again
    async with payments_uow(read_only=True) as tx:
        assert await tx.subscriptions.latest(alice) is None
        assert await tx.subscriptions.latest(bob) == again


async def test_concurrent_saves_of_one_subscription_never_conflict(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    order: list[str] = []

    async def write(tier: str, pause: float) -> Subscription:
        async with payments_uow() as tx:
            saved = await tx.subscriptions.save(subscription(users[0], tier_code=tier))
            await asyncio.sleep(pause)
            await tx.commit()
            order.append(tier)
        return saved

    tiers = ["a", "b", "c", "d"]
    results = await asyncio.gather(*(write(t, 0.01 * (4 - n)) for n, t in enumerate(tiers)))
    assert len({result.id for result in results}) == 1  # one row
    found = await locked(payments_uow, "sub_1")
    assert found is not None and found.tier_code == order[-1]


async def test_lock_holds_the_subscription_until_the_unit_ends(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    await save(payments_uow, subscription(users[0], synced_at=NOW))

    async def newer_read() -> Subscription | None:
        async with payments_uow() as tx:
            current = await tx.subscriptions.lock("sub_1")
            assert current is not None
            if current.synced_at is not None and current.synced_at >= NOW + DAY:
                return None  # an older read never overwrites a newer one
            saved = await tx.subscriptions.save(current.copy(status=S.CANCELED))
            await tx.commit()
        return saved

    async with payments_uow() as first:
        current = await first.subscriptions.lock("sub_1")
        assert current is not None
        second = asyncio.create_task(newer_read())
        await asyncio.sleep(0.2)
        assert not second.done()  # held up by the first unit's lock
        await first.subscriptions.save(current.copy(status=S.PAST_DUE, synced_at=NOW + DAY))
        await first.commit()
    # The second unit decided on what the first one committed.
    assert await asyncio.wait_for(second, timeout=30) is None
    assert (await locked(payments_uow, "sub_1")).status is S.PAST_DUE  # type: ignore[union-attr]


async def test_current_is_the_newest_that_has_not_ended_and_latest_the_newest(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    async with payments_uow(read_only=True) as tx:
        assert await tx.subscriptions.current(alice) is None
        assert await tx.subscriptions.latest(alice) is None
    await save(
        payments_uow,
        subscription(alice, "sub_old_active", status=S.ACTIVE),
        subscription(alice, "sub_unpaid", status=S.UNPAID),
        subscription(alice, "sub_expired", status=S.INCOMPLETE_EXPIRED),
        subscription(alice, "sub_canceled", status=S.CANCELED),
        subscription(bob, "sub_bob", status=S.CANCELED),
    )
    async with payments_uow(read_only=True) as tx:
        assert (await tx.subscriptions.current(alice)).gateway_subscription_id == "sub_unpaid"  # type: ignore[union-attr]
        assert (await tx.subscriptions.latest(alice)).gateway_subscription_id == "sub_canceled"  # type: ignore[union-attr]
        assert await tx.subscriptions.current(bob) is None
        assert (await tx.subscriptions.latest(bob)).gateway_subscription_id == "sub_bob"  # type: ignore[union-attr]
    # Once the unpaid one ends, the older active one is current; a save is not "newer".
    (unpaid,) = await save(payments_uow, subscription(alice, "sub_unpaid", status=S.CANCELED))
    async with payments_uow(read_only=True) as tx:
        assert (await tx.subscriptions.current(alice)).gateway_subscription_id == "sub_old_active"  # type: ignore[union-attr]
        assert (await tx.subscriptions.latest(alice)).gateway_subscription_id == "sub_canceled"  # type: ignore[union-attr]
    # Every other status counts as current.
    for status in S:
        if not status.ended:
            await save(payments_uow, subscription(bob, "sub_bob_2", status=status))
            async with payments_uow(read_only=True) as tx:
                found = await tx.subscriptions.current(bob)
            assert found is not None and found.status is status
    assert unpaid.status is S.CANCELED


async def test_past_due_since_before_lists_overdue_past_due_ones_oldest_first(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    await save(
        payments_uow,
        subscription(alice, "late", status=S.PAST_DUE, past_due_since=NOW - DAY),
        subscription(bob, "earliest", status=S.PAST_DUE, past_due_since=NOW - 9 * DAY),
        subscription(alice, "exactly_cutoff", status=S.PAST_DUE, past_due_since=NOW),
        subscription(alice, "recent", status=S.PAST_DUE, past_due_since=NOW + DAY),
        subscription(bob, "no_date", status=S.PAST_DUE),
        subscription(alice, "unpaid", status=S.UNPAID, past_due_since=NOW - 20 * DAY),
        subscription(bob, "recovered", status=S.ACTIVE, past_due_since=NOW - 20 * DAY),
        subscription(alice, "middle", status=S.PAST_DUE, past_due_since=NOW - 3 * DAY),
        subscription(bob, "middle_twin", status=S.PAST_DUE, past_due_since=NOW - 3 * DAY),
    )
    async with payments_uow(read_only=True) as tx:
        due = await tx.subscriptions.past_due_since_before(NOW, 10)
        assert ids(due) == ["earliest", "middle", "middle_twin", "late"]
        assert ids(await tx.subscriptions.past_due_since_before(NOW, 2)) == ["earliest", "middle"]
        assert await tx.subscriptions.past_due_since_before(NOW, 0) == []
        later = await tx.subscriptions.past_due_since_before(NOW + timedelta(microseconds=1), 10)
        assert ids(later)[-1] == "exactly_cutoff"


async def test_scheduled_due_lists_scheduled_changes_whose_period_ended(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    await save(
        payments_uow,
        subscription(alice, "ends_now", scheduled_tier_code="free", current_period_end=NOW),
        subscription(bob, "ended", scheduled_tier_code="free", current_period_end=NOW - DAY),
        subscription(alice, "future", scheduled_tier_code="free", current_period_end=NOW + DAY),
        subscription(bob, "nothing_scheduled", current_period_end=NOW - 5 * DAY),
        subscription(alice, "no_period", scheduled_tier_code="free"),
        subscription(bob, "oldest", scheduled_tier_code="pro", current_period_end=NOW - 7 * DAY),
        subscription(alice, "twin", scheduled_tier_code="pro", current_period_end=NOW - 7 * DAY),
    )
    async with payments_uow(read_only=True) as tx:
        due = await tx.subscriptions.scheduled_due(NOW, 10)
        assert ids(due) == ["oldest", "twin", "ended", "ends_now"]
        assert due[0].scheduled_tier_code == "pro"
        assert ids(await tx.subscriptions.scheduled_due(NOW, 1)) == ["oldest"]
        assert await tx.subscriptions.scheduled_due(NOW, 0) == []
        assert ids(await tx.subscriptions.scheduled_due(NOW + DAY, 10))[-1] == "future"


async def test_a_subscription_needs_an_existing_user_and_a_commit(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    with pytest.raises(UserNotFoundError):
        await save(payments_uow, subscription(424242))
    async with payments_uow() as tx:
        saved = await tx.subscriptions.save(subscription(users[0]))
        assert await tx.subscriptions.current(users[0]) == saved
    assert await locked(payments_uow, "sub_1") is None
    (kept,) = await save(payments_uow, subscription(users[0]))
    async with payments_uow() as tx:
        await tx.subscriptions.save(kept.copy(status=S.CANCELED))
        await tx.rollback()
        assert await tx.subscriptions.lock("sub_1") == kept
    async with payments_uow(read_only=True) as tx:
        assert await tx.subscriptions.current(users[0]) == kept

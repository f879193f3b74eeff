"""The `ReservationRepository` contract, through the billing unit of work, on every
adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.billing.errors import IdempotencyKeyTakenError
from core.billing.model import Reservation, ReservationStatus
from core.billing.ports import BillingUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.errors import ConflictError
from tests.contracts.test_one_time_tokens import add_users

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HELD, SETTLED, RELEASED = (
    ReservationStatus.HELD,
    ReservationStatus.SETTLED,
    ReservationStatus.RELEASED,
)


def reservation(
    user_id: int, key: str = "call-1", *, amount: int = 10, expires_in: float = 300
) -> Reservation:
    return Reservation(
        user_id=user_id,
        amount=amount,
        idempotency_key=key,
        expires_at=NOW + timedelta(seconds=expires_in),
    )


async def add(uow: BillingUnitOfWorkFactory, *items: Reservation) -> list[Reservation]:
    async with uow() as tx:
        stored = [await tx.reservations.add(item) for item in items]
        await tx.commit()
    return stored


async def get(uow: BillingUnitOfWorkFactory, reservation_id: int) -> Reservation | None:
    async with uow(read_only=True) as tx:
        return await tx.reservations.get(reservation_id)


async def close(
    uow: BillingUnitOfWorkFactory,
    reservation_id: int,
    status: ReservationStatus = SETTLED,
    settled_amount: int = 4,
) -> Reservation | None:
    async with uow() as tx:
        closed = await tx.reservations.close(reservation_id, status, settled_amount, NOW)
        await tx.commit()
    return closed


async def test_add_stores_a_held_reservation_that_get_and_find_return(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    before = datetime.now(UTC) - timedelta(seconds=5)
    (stored,) = await add(billing_uow, reservation(alice, amount=12))
    assert stored.id is not None and stored.status is HELD
    assert stored.created_at is not None and stored.created_at.utcoffset() == timedelta(0)
    assert before <= stored.created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert (stored.usage, stored.settled_amount, stored.closed_at) == (None, None, None)
    found = await get(billing_uow, stored.id)
    assert found == stored
    assert (found.user_id, found.amount, found.idempotency_key) == (alice, 12, "call-1")
    assert found.expires_at == NOW + timedelta(seconds=300)
    async with billing_uow(read_only=True) as tx:
        assert await tx.reservations.find(alice, "call-1") == stored
        assert await tx.reservations.find(alice, "call-2") is None
        assert await tx.reservations.find(alice + 1, "call-1") is None
    assert await get(billing_uow, stored.id + 1000) is None


async def test_nothing_is_durable_before_commit(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    async with billing_uow() as tx:
        stored = await tx.reservations.add(reservation(alice))
        assert stored.id is not None
        assert await tx.reservations.get(stored.id) == stored
    assert await get(billing_uow, stored.id) is None
    async with billing_uow(read_only=True) as tx:
        assert await tx.reservations.find(alice, "call-1") is None


async def test_a_key_is_used_once_per_user(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    (first,) = await add(billing_uow, reservation(alice))
    with pytest.raises(IdempotencyKeyTakenError):
        await add(billing_uow, reservation(alice, amount=99))
    async with billing_uow() as tx:
        await tx.reservations.add(reservation(alice, "call-2"))
        with pytest.raises(IdempotencyKeyTakenError):
            await tx.reservations.add(reservation(alice, "call-2"))
    async with billing_uow(read_only=True) as tx:
        assert await tx.reservations.find(alice, "call-1") == first
    # Control: another user may use the same key.
    (other,) = await add(billing_uow, reservation(bob))
    assert other.user_id == bob and other.id != first.id


async def test_of_units_racing_with_one_key_exactly_one_commits(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)

    async def attempt(amount: int) -> bool:
        try:
            async with billing_uow() as tx:
                await tx.reservations.add(reservation(alice, "raced", amount=amount))
                await asyncio.sleep(0.02)  # overlap the units
                await tx.commit()
        except IdempotencyKeyTakenError:
            return False
        return True

    results = await asyncio.gather(attempt(1), attempt(2), attempt(3))
    assert results.count(True) == 1
    async with billing_uow(read_only=True) as tx:
        winner = await tx.reservations.find(alice, "raced")
    assert winner is not None and winner.amount == results.index(True) + 1


async def test_a_reservation_needs_an_existing_user(
    billing_uow: BillingUnitOfWorkFactory,
) -> None:
    with pytest.raises(ConflictError):
        await add(billing_uow, reservation(424242))


async def test_record_usage_notes_the_cost_while_held_only(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    held, closed = await add(billing_uow, reservation(alice), reservation(alice, "call-2"))
    assert held.id is not None and closed.id is not None
    assert await close(billing_uow, closed.id, RELEASED, 0) is not None
    async with billing_uow() as tx:
        assert await tx.reservations.record_usage(held.id, 7) is True
        assert await tx.reservations.record_usage(closed.id, 7) is False
        assert await tx.reservations.record_usage(held.id + 1000, 7) is False
        await tx.commit()
    assert (await get(billing_uow, held.id)).usage == 7  # type: ignore[union-attr]
    assert (await get(billing_uow, closed.id)).usage is None  # type: ignore[union-attr]
    # A later note replaces the earlier one; uncommitted, it is not kept.
    async with billing_uow() as tx:
        assert await tx.reservations.record_usage(held.id, 9) is True
    assert (await get(billing_uow, held.id)).usage == 7  # type: ignore[union-attr]


@pytest.mark.parametrize(("status", "amount"), [(SETTLED, 4), (RELEASED, 0)])
async def test_close_moves_a_held_reservation_once(
    identity_uow: IdentityUnitOfWorkFactory,
    billing_uow: BillingUnitOfWorkFactory,
    status: ReservationStatus,
    amount: int,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    (held,) = await add(billing_uow, reservation(alice))
    assert held.id is not None
    closed = await close(billing_uow, held.id, status, amount)
    assert closed is not None
    assert (closed.id, closed.status, closed.settled_amount, closed.closed_at) == (
        held.id,
        status,
        amount,
        NOW,
    )
    assert (closed.user_id, closed.amount, closed.idempotency_key) == (alice, 10, "call-1")
    assert await get(billing_uow, held.id) == closed
    # Closed is closed: neither status again, nor the other one.
    assert await close(billing_uow, held.id, SETTLED, 1) is None
    assert await close(billing_uow, held.id, RELEASED, 0) is None
    assert await get(billing_uow, held.id) == closed
    assert await close(billing_uow, held.id + 1000) is None


async def test_close_refuses_to_close_as_held(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    (held,) = await add(billing_uow, reservation(alice))
    assert held.id is not None
    with pytest.raises(ValueError):
        await close(billing_uow, held.id, HELD, 0)
    assert await get(billing_uow, held.id) == held


async def test_a_rolled_back_close_leaves_the_reservation_held(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    (held,) = await add(billing_uow, reservation(alice))
    assert held.id is not None
    async with billing_uow() as tx:
        assert await tx.reservations.close(held.id, SETTLED, 3, NOW) is not None
    assert (await get(billing_uow, held.id)).status is HELD  # type: ignore[union-attr]
    assert await close(billing_uow, held.id, RELEASED, 0) is not None


@pytest.mark.parametrize("closers", [2, 10])
async def test_of_concurrent_closers_exactly_one_gets_the_reservation(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory, closers: int
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    (held,) = await add(billing_uow, reservation(alice))
    assert held.id is not None
    reservation_id = held.id

    async def attempt(n: int) -> Reservation | None:
        async with billing_uow() as tx:
            status = SETTLED if n % 2 else RELEASED
            closed = await tx.reservations.close(reservation_id, status, n, NOW)
            await asyncio.sleep(0.01)  # hold it while the others try
            await tx.commit()
        return closed

    results = await asyncio.gather(*(attempt(n) for n in range(closers)))
    winners = [closed for closed in results if closed is not None]
    assert len(winners) == 1
    assert await get(billing_uow, reservation_id) == winners[0]


async def test_expired_lists_held_reservations_past_expiry_oldest_first(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    stored = await add(
        billing_uow,
        reservation(alice, "late", expires_in=-10),
        reservation(bob, "earliest", expires_in=-300),
        reservation(alice, "exactly-now", expires_in=0),
        reservation(alice, "future", expires_in=1),
        reservation(bob, "closed", expires_in=-500),
        reservation(alice, "middle", expires_in=-60),
        reservation(bob, "middle-twin", expires_in=-60),
    )
    by_key = {item.idempotency_key: item for item in stored}
    closed_id = by_key["closed"].id
    assert closed_id is not None
    assert await close(billing_uow, closed_id, RELEASED, 0) is not None
    async with billing_uow(read_only=True) as tx:
        due = await tx.reservations.expired(NOW, 10)
        # Equal expiry times come in the order they were added.
        assert [item.idempotency_key for item in due] == [
            "earliest",
            "middle",
            "middle-twin",
            "late",
            "exactly-now",
        ]
        assert due[0] == by_key["earliest"]
        limited = await tx.reservations.expired(NOW, 2)
        assert [item.idempotency_key for item in limited] == ["earliest", "middle"]
        # Control: later, the one not yet due is listed too.
        later = await tx.reservations.expired(NOW + timedelta(seconds=1), 10)
        assert [item.idempotency_key for item in later][-1] == "future"

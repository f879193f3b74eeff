"""The credit ledger's rules (`CreditService`, `ReservationService`) on in-memory ports:
never below zero, the balance equal to the sum of the ledger, idempotent keys, a
reservation closed exactly once."""

from __future__ import annotations

import asyncio

import pytest

from core.billing.errors import (
    IdempotencyKeyTakenError,
    InsufficientCreditsError,
    ReservationNotFoundError,
)
from core.billing.model import LedgerReason, ReservationStatus
from core.shared.errors import RuleViolationError
from core.shared.query import PageRequest
from tests.unit.core.billing_world import BillingWorld


@pytest.fixture
async def world() -> BillingWorld:
    return await BillingWorld().seeded()


async def _funded(world: BillingWorld, amount: int, name: str = "ada") -> int:
    user = await world.member(name)
    assert user.id is not None
    if amount:
        await world.credits.grant(user.id, amount, idempotency_key=f"fund-{name}")
    return user.id


async def test_grants_and_spends_move_the_balance_and_the_ledger_together(
    world: BillingWorld,
) -> None:
    user_id = await _funded(world, 100)
    spent = await world.credits.spend(user_id, 30, idempotency_key="s1", source="test:1")
    assert spent.delta == -30 and spent.balance_after == 70 and spent.reason is LedgerReason.SPEND
    assert await world.credits.balance(user_id) == 70
    assert await world.ledger_sum(user_id) == 70
    balance, page = await world.credits.history(user_id, PageRequest(limit=10))
    assert balance == 70
    assert [e.delta for e in page.items] == [-30, 100]  # newest first


async def test_a_spend_beyond_the_balance_is_refused_and_changes_nothing(
    world: BillingWorld,
) -> None:
    user_id = await _funded(world, 10)
    with pytest.raises(InsufficientCreditsError) as refused:
        await world.credits.spend(user_id, 11, idempotency_key="too-much")
    assert refused.value.reason == "insufficient_credits"
    assert (refused.value.limit, refused.value.remaining) == (11, 10)
    assert refused.value.upgrade_hint == "https://app.example.com/pricing"
    assert await world.credits.balance(user_id) == 10
    # The refused key is free: nothing was written under it.
    assert (await world.credits.spend(user_id, 10, idempotency_key="too-much")).balance_after == 0


async def test_the_same_key_returns_the_first_result_and_another_amount_is_refused(
    world: BillingWorld,
) -> None:
    user_id = await _funded(world, 50)
    first = await world.credits.spend(user_id, 5, idempotency_key="once")
    again = await world.credits.spend(user_id, 5, idempotency_key="once")
    assert again == first
    assert await world.credits.balance(user_id) == 45
    with pytest.raises(IdempotencyKeyTakenError):
        await world.credits.spend(user_id, 6, idempotency_key="once")
    with pytest.raises(IdempotencyKeyTakenError):
        await world.credits.grant(user_id, 5, idempotency_key="once")  # another kind
    assert await world.ledger_sum(user_id) == 45


async def test_racing_calls_with_one_key_apply_once(world: BillingWorld) -> None:
    user_id = await _funded(world, 50)
    results = await asyncio.gather(
        *(world.credits.spend(user_id, 5, idempotency_key="race") for _ in range(10))
    )
    assert len({r.id for r in results}) == 1
    assert await world.credits.balance(user_id) == 45


async def test_concurrent_spends_never_overdraw(world: BillingWorld) -> None:
    user_id = await _funded(world, 25)

    async def spend(n: int) -> bool:
        try:
            await world.credits.spend(user_id, 1, idempotency_key=f"c{n}")
        except InsufficientCreditsError:
            return False
        return True

    outcomes = await asyncio.gather(*(spend(n) for n in range(50)))
    assert sum(outcomes) == 25
    assert await world.credits.balance(user_id) == 0
    assert await world.ledger_sum(user_id) == 0


@pytest.mark.parametrize("amount", [0, -1, True])
async def test_amounts_are_positive_whole_numbers(world: BillingWorld, amount: int) -> None:
    user_id = await _funded(world, 5)
    with pytest.raises(RuleViolationError):
        await world.credits.spend(user_id, amount, idempotency_key="bad")


async def test_grants_and_large_spends_are_audited_small_ones_are_not(
    world: BillingWorld,
) -> None:
    user_id = await _funded(world, 5000)
    await world.credits.spend(user_id, 10, idempotency_key="small")
    await world.credits.spend(user_id, 1000, idempotency_key="large")
    granted = await world.audit(action="credits.granted")
    spent = await world.audit(action="credits.spent")
    assert [e.details["amount"] for e in granted] == [5000]
    assert [e.details["amount"] for e in spent] == [1000]  # the threshold's


async def test_take_back_never_goes_below_zero_and_says_what_it_could_not(
    world: BillingWorld,
) -> None:
    user_id = await _funded(world, 30)
    taken = await world.credits.take_back(user_id, 100, idempotency_key="refund-1")
    assert taken is not None and taken.delta == -30 and taken.balance_after == 0
    (entry,) = await world.audit(action="credits.reversed")
    assert entry.details["amount"] == 30 and entry.details["not_recovered"] == 70
    assert await world.credits.take_back(user_id, 5, idempotency_key="refund-2") is None
    again = await world.credits.take_back(user_id, 100, idempotency_key="refund-1")
    assert again == taken  # the same key: the first result
    assert await world.ledger_sum(user_id) == 0


async def test_an_operators_take_back_is_audited_with_the_operator(world: BillingWorld) -> None:
    user_id = await _funded(world, 50)
    await world.credits.take_back(
        user_id, 20, idempotency_key="adjust-1", source="admin", note="mistake", actor_id=7
    )
    (entry,) = await world.audit(action="credits.reversed")
    assert entry.actor_id == 7 and entry.details["amount"] == 20
    assert entry.details["source"] == "admin"
    assert await world.credits.balance(user_id) == 30


# --- reservations ----------------------------------------------------------------------


async def test_settling_for_less_returns_the_rest(world: BillingWorld) -> None:
    user_id = await _funded(world, 100)
    held = await world.reservations.reserve(user_id, 40, idempotency_key="call-1")
    assert await world.credits.balance(user_id) == 60
    settled = await world.reservations.settle(held.id or 0, 15)
    assert settled.status is ReservationStatus.SETTLED and settled.settled_amount == 15
    assert await world.credits.balance(user_id) == 85
    assert await world.ledger_sum(user_id) == 85
    # Closing again changes nothing: the first close stands.
    assert (await world.reservations.release(held.id or 0)).status is ReservationStatus.SETTLED
    assert await world.credits.balance(user_id) == 85


async def test_a_cost_above_the_reservation_keeps_the_reservation_only(
    world: BillingWorld,
) -> None:
    user_id = await _funded(world, 100)
    held = await world.reservations.reserve(user_id, 20, idempotency_key="call")
    settled = await world.reservations.settle(held.id or 0, 500)
    assert settled.settled_amount == 20 and await world.credits.balance(user_id) == 80


async def test_releasing_returns_everything_and_a_repeated_key_holds_once(
    world: BillingWorld,
) -> None:
    user_id = await _funded(world, 10)
    held = await world.reservations.reserve(user_id, 10, idempotency_key="k")
    assert await world.reservations.reserve(user_id, 10, idempotency_key="k") == held
    with pytest.raises(IdempotencyKeyTakenError):
        await world.reservations.reserve(user_id, 9, idempotency_key="k")
    with pytest.raises(InsufficientCreditsError):
        await world.reservations.reserve(user_id, 1, idempotency_key="other")
    released = await world.reservations.release(held.id or 0)
    assert released.status is ReservationStatus.RELEASED and released.settled_amount == 0
    assert await world.credits.balance(user_id) == 10
    with pytest.raises(ReservationNotFoundError):
        await world.reservations.release(999_999)


async def test_the_sweep_closes_an_expired_reservation_once_even_when_run_twice(
    world: BillingWorld,
) -> None:
    user_id = await _funded(world, 100)
    used = await world.reservations.reserve(user_id, 30, idempotency_key="crashed-after-usage")
    await world.reservations.record_usage(used.id or 0, 12)
    unused = await world.reservations.reserve(user_id, 20, idempotency_key="crashed-before")
    fresh = await world.reservations.reserve(
        user_id, 5, idempotency_key="still-running", ttl_seconds=3600
    )
    world.clock.advance(16 * 60)
    closed = await asyncio.gather(
        world.reservations.sweep_expired(), world.reservations.sweep_expired()
    )
    assert sum(closed) == 2  # each expired one once, whichever sweep got it
    async with world.billing_uow(read_only=True) as tx:
        after_used = await tx.reservations.get(used.id or 0)
        after_unused = await tx.reservations.get(unused.id or 0)
        after_fresh = await tx.reservations.get(fresh.id or 0)
    assert after_used is not None and after_used.status is ReservationStatus.SETTLED
    assert after_used.settled_amount == 12  # the usage recorded for it
    assert after_unused is not None and after_unused.status is ReservationStatus.RELEASED
    assert after_fresh is not None and after_fresh.status is ReservationStatus.HELD
    assert await world.credits.balance(user_id) == 100 - 12 - 5
    assert await world.ledger_sum(user_id) == 100 - 12 - 5
    assert await world.reservations.sweep_expired() == 0


async def test_a_request_settling_while_the_sweep_releases_closes_once(
    world: BillingWorld,
) -> None:
    user_id = await _funded(world, 50)
    held = await world.reservations.reserve(user_id, 50, idempotency_key="contested")
    world.clock.advance(3600)
    settled, swept = await asyncio.gather(
        world.reservations.settle(held.id or 0, 10), world.reservations.sweep_expired()
    )
    balance = await world.credits.balance(user_id)
    # Whoever won, the balance is one close's worth, never both.
    assert balance in (40, 50)
    assert await world.ledger_sum(user_id) == balance
    assert settled.status in (ReservationStatus.SETTLED, ReservationStatus.RELEASED)
    assert swept in (0, 1)


async def test_the_sweep_is_a_periodic_job_with_a_handler(world: BillingWorld) -> None:
    from core.billing.reservations import SWEEP_RESERVATIONS_JOB
    from entrypoints.bootstrap.jobs import PERIODIC_JOBS

    assert SWEEP_RESERVATIONS_JOB in {job.name for job in PERIODIC_JOBS}
    assert SWEEP_RESERVATIONS_JOB in world.handlers

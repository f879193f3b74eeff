"""The `UsageCounters` contract, through the billing unit of work, on every adapter: in
memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.billing.model import Period
from core.billing.ports import BillingUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.errors import ConflictError, RuleViolationError
from tests.contracts.test_one_time_tokens import add_users

TODAY = Period.DAY.start(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
TOMORROW = Period.DAY.end(TODAY)


async def consume(
    uow: BillingUnitOfWorkFactory,
    user_id: int,
    amount: int,
    limit: int,
    *,
    name: str = "messages",
    period: datetime = TODAY,
) -> int | None:
    async with uow() as tx:
        total = await tx.usage.consume(user_id, name, period, amount, limit)
        await tx.commit()
    return total


async def used(
    uow: BillingUnitOfWorkFactory, user_id: int, name: str = "messages", period: datetime = TODAY
) -> int:
    async with uow(read_only=True) as tx:
        return await tx.usage.used(user_id, name, period)


async def test_consume_adds_within_the_limit_and_returns_the_total(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    assert await used(billing_uow, alice) == 0
    assert await consume(billing_uow, alice, 3, 10) == 3
    assert await consume(billing_uow, alice, 4, 10) == 7
    assert await used(billing_uow, alice) == 7
    # Counting nothing is allowed and changes nothing.
    assert await consume(billing_uow, alice, 0, 10) == 7


async def test_an_amount_past_the_limit_is_refused_and_counts_nothing(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await consume(billing_uow, alice, 7, 10)
    assert await consume(billing_uow, alice, 4, 10) is None
    assert await used(billing_uow, alice) == 7
    # Control: what is left fits exactly.
    assert await consume(billing_uow, alice, 3, 10) == 10
    assert await consume(billing_uow, alice, 1, 10) is None
    assert await used(billing_uow, alice) == 10


async def test_a_single_amount_larger_than_the_limit_is_refused_on_a_new_counter(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    assert await consume(billing_uow, alice, 51, 50) is None
    assert await used(billing_uow, alice) == 0
    # Control: the whole limit at once is accepted.
    assert await consume(billing_uow, alice, 50, 50) == 50
    # A limit of zero grants nothing.
    assert await consume(billing_uow, alice, 1, 0, name="tokens") is None
    assert await used(billing_uow, alice, "tokens") == 0


async def test_a_negative_amount_is_refused(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await consume(billing_uow, alice, 5, 10)
    with pytest.raises(RuleViolationError):
        await consume(billing_uow, alice, -1, 10)
    assert await used(billing_uow, alice) == 5


async def test_nothing_is_durable_before_commit(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await consume(billing_uow, alice, 2, 10)
    async with billing_uow() as tx:
        assert await tx.usage.consume(alice, "messages", TODAY, 5, 10) == 7
        assert await tx.usage.used(alice, "messages", TODAY) == 7
        # The unit's own count is what the limit sees next.
        assert await tx.usage.consume(alice, "messages", TODAY, 4, 10) is None
    assert await used(billing_uow, alice) == 2


async def test_counters_are_apart_by_user_name_and_period(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    assert await consume(billing_uow, alice, 5, 5) == 5
    assert await consume(billing_uow, alice, 1, 5) is None
    # A new period, another limit name and another user each start from zero.
    assert await consume(billing_uow, alice, 5, 5, period=TOMORROW) == 5
    assert await consume(billing_uow, alice, 2, 5, name="tokens") == 2
    assert await consume(billing_uow, bob, 3, 5) == 3
    assert await used(billing_uow, alice) == 5
    assert await used(billing_uow, alice, period=TOMORROW) == 5
    assert await used(billing_uow, alice, "tokens") == 2
    assert await used(billing_uow, bob) == 3
    assert await used(billing_uow, bob, period=TOMORROW) == 0


async def test_used_in_reads_each_limit_in_its_own_period_at_once(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    month = Period.MONTH.start(TODAY)
    await consume(billing_uow, alice, 3, 10)  # messages today
    await consume(billing_uow, alice, 9, 10, period=TOMORROW)  # another day: not asked
    await consume(billing_uow, alice, 700, 1000, name="tokens", period=month)
    await consume(billing_uow, alice, 5, 10, name="tokens", period=TODAY)  # not its period
    await consume(billing_uow, bob, 4, 10)  # another user
    periods = {"messages": TODAY, "tokens": month, "images": TODAY}
    async with billing_uow() as tx:  # ends without a commit
        found = await tx.usage.used_in(alice, periods)
        assert found == {"messages": 3, "tokens": 700, "images": 0}
        assert await tx.usage.used_in(alice, {}) == {}
        assert await tx.usage.used_in(bob, {"messages": TODAY}) == {"messages": 4}
        # The unit's own counts are read too, and a zone is only a way to write an instant.
        await tx.usage.consume(alice, "images", TODAY, 2, 10)
        paris = TODAY.astimezone(timezone(timedelta(hours=1)))
        assert await tx.usage.used_in(alice, {"images": paris, "messages": paris}) == {
            "images": 2,
            "messages": 3,
        }


async def test_a_period_is_one_instant_whatever_its_time_zone(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    paris = TODAY.astimezone(timezone(timedelta(hours=1)))
    await consume(billing_uow, alice, 4, 10, period=paris)
    assert await used(billing_uow, alice) == 4
    assert await consume(billing_uow, alice, 6, 10) == 10


async def test_a_counter_needs_an_existing_user(billing_uow: BillingUnitOfWorkFactory) -> None:
    with pytest.raises(ConflictError):
        await consume(billing_uow, 424242, 1, 10)


async def test_concurrent_consumes_never_pass_the_limit(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)

    async def attempt() -> int | None:
        async with billing_uow() as tx:
            total = await tx.usage.consume(alice, "messages", TODAY, 1, 50)
            await asyncio.sleep(0)  # let the others run between the count and the commit
            await tx.commit()
        return total

    results = await asyncio.gather(*(attempt() for _ in range(100)))
    granted = [total for total in results if total is not None]
    assert len(granted) == 50
    # Each success saw its own total: the counter moved one step at a time.
    assert sorted(granted) == list(range(1, 51))
    assert await used(billing_uow, alice) == 50

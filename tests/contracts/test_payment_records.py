"""The `CustomerRepository` and `CheckoutRepository` contracts, through the payments
unit of work, on every adapter: in memory, SQLite (a file per test) and Postgres.
(Payments are in `test_payments.py`, subscriptions in `test_payment_subscriptions.py`,
the event log in `test_payment_events.py`; they share the helpers here.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.identity.errors import UserNotFoundError
from core.identity.ports import IdentityUnitOfWorkFactory
from core.payments.errors import (
    CheckoutExistsError,
    CheckoutNotFoundError,
    CustomerExistsError,
)
from core.payments.model import (
    Checkout,
    CheckoutKind,
    CheckoutStatus,
    Customer,
)
from core.payments.ports import PaymentsUnitOfWorkFactory
from tests.contracts.test_one_time_tokens import add_users

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OPEN, COMPLETED = CheckoutStatus.OPEN, CheckoutStatus.COMPLETED


def recent(moment: datetime | None) -> bool:
    """Stamped by the store just now, in UTC."""
    now = datetime.now(UTC)
    return (
        moment is not None
        and moment.utcoffset() == timedelta(0)
        and now - timedelta(seconds=30) <= moment <= now + timedelta(seconds=5)
    )


@pytest.fixture
async def users(identity_uow: IdentityUnitOfWorkFactory) -> list[int]:
    return await add_users(identity_uow, 2)


# --- customers ---------------------------------------------------------------------------


async def add_customer(uow: PaymentsUnitOfWorkFactory, user_id: int, gateway_id: str) -> Customer:
    async with uow() as tx:
        stored = await tx.customers.add(Customer(user_id=user_id, gateway_customer_id=gateway_id))
        await tx.commit()
    return stored


async def test_a_customer_is_found_by_user_and_by_gateway_id(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    stored = await add_customer(payments_uow, alice, "cus_alice")
    assert (stored.user_id, stored.gateway_customer_id) == (alice, "cus_alice")
    assert recent(stored.created_at)
    async with payments_uow(read_only=True) as tx:
        assert await tx.customers.get(alice) == stored
        assert await tx.customers.by_gateway_id("cus_alice") == stored
        assert await tx.customers.get(bob) is None
        assert await tx.customers.by_gateway_id("cus_bob") is None


async def test_one_customer_per_user_and_per_gateway_id(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    first = await add_customer(payments_uow, alice, "cus_1")
    with pytest.raises(CustomerExistsError):
        await add_customer(payments_uow, alice, "cus_2")
    with pytest.raises(CustomerExistsError):
        await add_customer(payments_uow, bob, "cus_1")
    # A refused add leaves the unit usable: its other writes commit.
    async with payments_uow() as tx:
        with pytest.raises(CustomerExistsError):
            await tx.customers.add(Customer(user_id=alice, gateway_customer_id="cus_3"))
        await tx.customers.add(Customer(user_id=bob, gateway_customer_id="cus_bob"))
        await tx.commit()
    async with payments_uow(read_only=True) as tx:
        assert await tx.customers.get(alice) == first
        assert (await tx.customers.get(bob)).gateway_customer_id == "cus_bob"  # type: ignore[union-attr]
        assert await tx.customers.by_gateway_id("cus_3") is None


async def test_of_units_racing_to_add_a_users_customer_exactly_one_commits(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice = users[0]

    async def attempt(n: int) -> bool:
        try:
            async with payments_uow() as tx:
                await tx.customers.add(Customer(user_id=alice, gateway_customer_id=f"cus_{n}"))
                await asyncio.sleep(0.02)  # overlap the units
                await tx.commit()
        except CustomerExistsError:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(4)))
    assert results.count(True) == 1
    async with payments_uow(read_only=True) as tx:
        found = await tx.customers.get(alice)
    assert found is not None and found.gateway_customer_id == f"cus_{results.index(True)}"


async def test_a_customer_needs_an_existing_user_and_a_commit(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    with pytest.raises(UserNotFoundError):
        await add_customer(payments_uow, 424242, "cus_ghost")
    async with payments_uow() as tx:
        added = await tx.customers.add(Customer(user_id=users[0], gateway_customer_id="cus_1"))
        assert await tx.customers.get(users[0]) == added
    async with payments_uow() as tx:
        await tx.customers.add(Customer(user_id=users[0], gateway_customer_id="cus_1"))
        await tx.rollback()
    async with payments_uow(read_only=True) as tx:
        assert await tx.customers.get(users[0]) is None
        assert await tx.customers.by_gateway_id("cus_1") is None


# --- checkouts ---------------------------------------------------------------------------


def checkout(user_id: int, checkout_id: str = "co_1", **changes: Any) -> Checkout:
    changes.setdefault("kind", CheckoutKind.CREDIT_PACK)
    changes.setdefault("code", "small")
    return Checkout(id=checkout_id, user_id=user_id, **changes)


async def add_checkout(uow: PaymentsUnitOfWorkFactory, item: Checkout) -> Checkout:
    async with uow() as tx:
        stored = await tx.checkouts.add(item)
        await tx.commit()
    return stored


async def get_checkout(uow: PaymentsUnitOfWorkFactory, checkout_id: str) -> Checkout | None:
    async with uow(read_only=True) as tx:
        return await tx.checkouts.get(checkout_id)


async def complete(uow: PaymentsUnitOfWorkFactory, checkout_id: str) -> Checkout | None:
    async with uow() as tx:
        completed = await tx.checkouts.complete(checkout_id, NOW)
        await tx.commit()
    return completed


async def test_add_stamps_the_checkout_and_get_returns_every_field(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    wanted = checkout(
        users[0],
        "co_8f3a",
        kind=CheckoutKind.TIER,
        code="pro",
        gateway_session_id="cs_test_1",
        url="https://checkout.example.com/c/pay/cs_test_1#fragment",
    )
    stored = await add_checkout(payments_uow, wanted)
    assert recent(stored.created_at)
    assert stored == wanted.copy(created_at=stored.created_at)
    found = await get_checkout(payments_uow, "co_8f3a")
    assert found == stored
    assert (found.kind, found.status) == (CheckoutKind.TIER, OPEN)
    assert await get_checkout(payments_uow, "co_other") is None


async def test_checkout_ids_and_session_ids_are_unique(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    first = await add_checkout(payments_uow, checkout(alice, gateway_session_id="cs_1"))
    with pytest.raises(CheckoutExistsError):
        await add_checkout(payments_uow, checkout(bob, code="large"))
    with pytest.raises(CheckoutExistsError):
        await add_checkout(payments_uow, checkout(bob, "co_2", gateway_session_id="cs_1"))
    async with payments_uow() as tx:
        second = await tx.checkouts.add(checkout(bob, "co_2"))
        with pytest.raises(CheckoutExistsError):
            await tx.checkouts.update(second.copy(gateway_session_id="cs_1"))
    # Many checkouts have no session yet: NULL is never a duplicate.
    await add_checkout(payments_uow, checkout(bob, "co_3"))
    await add_checkout(payments_uow, checkout(bob, "co_4"))
    assert await get_checkout(payments_uow, "co_1") == first
    assert await get_checkout(payments_uow, "co_2") is None


async def test_of_units_racing_to_add_one_checkout_id_exactly_one_commits(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    async def attempt(code: str) -> bool:
        try:
            async with payments_uow() as tx:
                await tx.checkouts.add(checkout(users[0], "co_raced", code=code))
                await asyncio.sleep(0.02)
                await tx.commit()
        except CheckoutExistsError:
            return False
        return True

    codes = ["a", "b", "c"]
    results = await asyncio.gather(*(attempt(code) for code in codes))
    assert results.count(True) == 1
    assert (await get_checkout(payments_uow, "co_raced")).code == codes[results.index(True)]  # type: ignore[union-attr]


async def test_update_writes_status_session_url_and_completion_only(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    stored = await add_checkout(payments_uow, checkout(alice))
    async with payments_uow() as tx:
        changed = await tx.checkouts.update(
            checkout(
                bob,
                kind=CheckoutKind.TIER,
                code="pro",
                status=COMPLETED,
                gateway_session_id="cs_9",
                url="https://pay.example.com/cs_9",
                created_at=NOW - timedelta(days=9),
                completed_at=NOW,
            )
        )
        await tx.commit()
    expected = stored.copy(
        status=COMPLETED,
        gateway_session_id="cs_9",
        url="https://pay.example.com/cs_9",
        completed_at=NOW,
    )
    assert changed == expected
    assert await get_checkout(payments_uow, "co_1") == expected
    with pytest.raises(CheckoutNotFoundError):
        async with payments_uow() as tx:
            await tx.checkouts.update(checkout(alice, "co_unknown"))


async def test_complete_moves_an_open_checkout_once(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    stored = await add_checkout(payments_uow, checkout(users[0], gateway_session_id="cs_1"))
    completed = await complete(payments_uow, "co_1")
    assert completed == stored.copy(status=COMPLETED, completed_at=NOW)
    assert await get_checkout(payments_uow, "co_1") == completed
    assert await complete(payments_uow, "co_1") is None
    assert await complete(payments_uow, "co_unknown") is None
    assert await get_checkout(payments_uow, "co_1") == completed


async def test_a_rolled_back_completion_leaves_the_checkout_open(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    stored = await add_checkout(payments_uow, checkout(users[0]))
    async with payments_uow() as tx:
        assert await tx.checkouts.complete("co_1", NOW) is not None
        assert (await tx.checkouts.get("co_1")).status is COMPLETED  # type: ignore[union-attr]
    assert await get_checkout(payments_uow, "co_1") == stored
    assert await complete(payments_uow, "co_1") is not None


@pytest.mark.parametrize("completers", [2, 10])
async def test_of_concurrent_completions_exactly_one_wins(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int], completers: int
) -> None:
    await add_checkout(payments_uow, checkout(users[0]))

    async def attempt(n: int) -> Checkout | None:
        async with payments_uow() as tx:
            completed = await tx.checkouts.complete("co_1", NOW + timedelta(seconds=n))
            await asyncio.sleep(0.01)  # hold it while the others try
            await tx.commit()
        return completed

    results = await asyncio.gather(*(attempt(n) for n in range(completers)))
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert await get_checkout(payments_uow, "co_1") == winners[0]


async def test_a_checkout_needs_an_existing_user_and_a_commit(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    with pytest.raises(UserNotFoundError):
        await add_checkout(payments_uow, checkout(424242))
    async with payments_uow() as tx:
        added = await tx.checkouts.add(checkout(users[0]))
        assert await tx.checkouts.get("co_1") == added
        await tx.rollback()
    assert await get_checkout(payments_uow, "co_1") is None

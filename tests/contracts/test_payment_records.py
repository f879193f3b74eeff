"""The `CustomerRepository`, `CheckoutRepository` and `PaymentRepository` contracts,
through the payments unit of work, on every adapter: in memory, SQLite (a file per
test) and Postgres."""

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
    PaymentExistsError,
    PaymentNotFoundError,
)
from core.payments.model import (
    Checkout,
    CheckoutKind,
    CheckoutStatus,
    Customer,
    Payment,
    PaymentKind,
    PaymentStatus,
)
from core.payments.ports import PaymentsUnitOfWorkFactory
from core.shared.errors import ConflictError
from core.shared.query import PageRequest
from tests.contracts.test_one_time_tokens import add_users

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OPEN, COMPLETED = CheckoutStatus.OPEN, CheckoutStatus.COMPLETED


def fields(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in type(item).__dataclass_fields__}


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


# --- payments ----------------------------------------------------------------------------


def payment(user_id: int, reference: str = "in_1", **changes: Any) -> Payment:
    changes.setdefault("kind", PaymentKind.CREDIT_PACK)
    changes.setdefault("amount", 9_990_000)
    changes.setdefault("currency", "usd")
    changes.setdefault("status", PaymentStatus.SUCCEEDED)
    return Payment(user_id=user_id, reference=reference, **changes)


async def add_payments(uow: PaymentsUnitOfWorkFactory, *items: Payment) -> list[Payment]:
    async with uow() as tx:
        stored = [await tx.payments.add(item) for item in items]
        await tx.commit()
    return stored


async def locked(uow: PaymentsUnitOfWorkFactory, reference: str) -> Payment | None:
    async with uow() as tx:
        return await tx.payments.lock(reference)


async def test_add_assigns_an_id_and_stamps_the_payment(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    wanted = payment(
        users[0],
        "in_1Qx",
        kind=PaymentKind.SUBSCRIPTION,
        amount=29_000_000,
        currency="EUR",
        status=PaymentStatus.PARTIALLY_REFUNDED,
        tier_code="pro",
        gateway_payment_id="pi_1",
        gateway_subscription_id="sub_1",
        amount_refunded=5_000_000,
        credits_granted=100,
        credits_reversed=20,
    )
    (stored,) = await add_payments(payments_uow, wanted)
    assert stored.id is not None and recent(stored.created_at)
    assert stored.updated_at == stored.created_at
    assert stored == wanted.copy(
        id=stored.id, created_at=stored.created_at, updated_at=stored.updated_at
    )
    assert stored.currency == "eur"
    assert await locked(payments_uow, "in_1Qx") == stored
    assert await locked(payments_uow, "in_other") is None
    async with payments_uow(read_only=True) as tx:
        assert await tx.payments.by_gateway_payment("pi_1") == stored
        assert await tx.payments.by_gateway_payment("pi_2") is None


async def test_by_gateway_payment_returns_the_first_recorded(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    first, _ = await add_payments(
        payments_uow,
        payment(users[0], "cs_1", gateway_payment_id="pi_1"),
        payment(users[0], "in_1", gateway_payment_id="pi_1"),
    )
    async with payments_uow(read_only=True) as tx:
        assert await tx.payments.by_gateway_payment("pi_1") == first


async def test_a_reference_is_recorded_once(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    (first,) = await add_payments(payments_uow, payment(alice))
    with pytest.raises(PaymentExistsError):
        await add_payments(payments_uow, payment(bob, amount=1))
    async with payments_uow() as tx:
        await tx.payments.add(payment(bob, "in_2"))
        with pytest.raises(PaymentExistsError):
            await tx.payments.add(payment(bob, "in_2"))
        # The refused add left the unit usable.
        await tx.commit()
    assert await locked(payments_uow, "in_1") == first
    assert (await locked(payments_uow, "in_2")).user_id == bob  # type: ignore[union-attr]


async def test_of_units_racing_to_record_one_reference_exactly_one_commits(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    async def attempt(amount: int) -> bool:
        try:
            async with payments_uow() as tx:
                await tx.payments.add(payment(users[0], "in_raced", amount=amount))
                await asyncio.sleep(0.02)
                await tx.commit()
        except PaymentExistsError:
            return False
        return True

    results = await asyncio.gather(*(attempt(amount) for amount in (1, 2, 3, 4)))
    assert results.count(True) == 1
    assert (await locked(payments_uow, "in_raced")).amount == results.index(True) + 1  # type: ignore[union-attr]


async def test_update_replaces_every_field_but_id_reference_and_creation(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    (stored,) = await add_payments(payments_uow, payment(alice, credits_granted=500))
    await asyncio.sleep(0.002)
    replacement = payment(
        bob,
        kind=PaymentKind.SUBSCRIPTION,
        amount=10_000_000,
        currency="gbp",
        status=PaymentStatus.REFUNDED,
        product_code="large",
        tier_code="pro",
        gateway_payment_id="pi_9",
        gateway_subscription_id="sub_9",
        amount_refunded=10_000_000,
        credits_granted=500,
        credits_reversed=500,
        id=9999,
        created_at=NOW,
        updated_at=NOW,
    )
    async with payments_uow() as tx:
        changed = await tx.payments.update(replacement)
        await tx.commit()
    assert changed.updated_at is not None and changed.updated_at > stored.updated_at  # type: ignore[operator]
    assert changed == replacement.copy(
        id=stored.id, created_at=stored.created_at, updated_at=changed.updated_at
    )
    assert await locked(payments_uow, "in_1") == changed
    with pytest.raises(PaymentNotFoundError):
        async with payments_uow() as tx:
            await tx.payments.update(payment(alice, "in_unknown"))


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 100, "amount_refunded": 101},
        {"credits_granted": 10, "credits_reversed": 11},
    ],
    ids=["refund_beyond_amount", "reversal_beyond_grant"],
)
async def test_refunds_and_reversals_never_exceed_what_was_paid_and_granted(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int], changes: dict[str, int]
) -> None:
    with pytest.raises(ConflictError):
        await add_payments(payments_uow, payment(users[0], **changes))
    (stored,) = await add_payments(payments_uow, payment(users[0], amount=100, credits_granted=10))
    with pytest.raises(ConflictError):
        async with payments_uow() as tx:
            await tx.payments.update(stored.copy(**changes))
            await tx.commit()
    assert await locked(payments_uow, "in_1") == stored
    # Control: up to the limit is fine.
    async with payments_uow() as tx:
        await tx.payments.update(stored.copy(amount_refunded=100, credits_reversed=10))
        await tx.commit()


async def test_a_payment_needs_an_existing_user_and_a_commit(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    with pytest.raises(UserNotFoundError):
        await add_payments(payments_uow, payment(424242))
    (stored,) = await add_payments(payments_uow, payment(users[0]))
    async with payments_uow() as tx:
        await tx.payments.update(stored.copy(status=PaymentStatus.REFUNDED, amount_refunded=1))
        await tx.payments.add(payment(users[0], "in_2"))
        await tx.rollback()
    assert await locked(payments_uow, "in_1") == stored
    assert await locked(payments_uow, "in_2") is None


async def test_lock_holds_the_payment_until_the_unit_ends(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    (stored,) = await add_payments(payments_uow, payment(users[0], credits_granted=50))

    async def reverse(credits: int) -> Payment:
        async with payments_uow() as tx:
            current = await tx.payments.lock("in_1")
            assert current is not None
            changed = await tx.payments.update(
                current.copy(credits_reversed=current.credits_reversed + credits)
            )
            await tx.commit()
        return changed

    async with payments_uow() as first:
        current = await first.payments.lock("in_1")
        assert current == stored
        second = asyncio.create_task(reverse(5))
        await asyncio.sleep(0.2)
        assert not second.done()  # held up by the first unit's lock
        await first.payments.update(current.copy(credits_reversed=10))  # type: ignore[union-attr]
        await first.commit()
    # The second read the first one's committed change: nothing was lost.
    assert (await asyncio.wait_for(second, timeout=30)).credits_reversed == 15
    assert (await locked(payments_uow, "in_1")).credits_reversed == 15  # type: ignore[union-attr]


async def test_a_users_payments_are_paged_newest_first(
    payments_uow: PaymentsUnitOfWorkFactory, users: list[int]
) -> None:
    alice, bob = users
    for n in range(7):
        await add_payments(payments_uow, payment(alice, f"in_{n}"))
    await add_payments(payments_uow, payment(bob, "in_bob"))
    pages = []
    cursor = None
    async with payments_uow(read_only=True) as tx:
        while True:
            page = await tx.payments.for_user(alice, PageRequest(limit=3, cursor=cursor))
            pages.append([item.reference for item in page.items])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        whole = await tx.payments.for_user(alice, PageRequest(limit=7))
        assert len(whole.items) == 7 and whole.next_cursor is None
        assert (await tx.payments.for_user(424242, PageRequest())).items == []
    assert pages == [["in_6", "in_5", "in_4"], ["in_3", "in_2", "in_1"], ["in_0"]]
    # The unit's own new payment comes first.
    async with payments_uow() as tx:
        await tx.payments.add(payment(alice, "in_new"))
        first = await tx.payments.for_user(alice, PageRequest(limit=2))
        assert [item.reference for item in first.items] == ["in_new", "in_6"]

"""The `PaymentRepository` contract, through the payments unit of work, on every
adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.identity.errors import UserNotFoundError
from core.identity.ports import IdentityUnitOfWorkFactory
from core.payments.errors import PaymentExistsError, PaymentNotFoundError
from core.payments.model import Payment, PaymentKind, PaymentStatus
from core.payments.ports import PaymentsUnitOfWorkFactory
from core.shared.errors import ConflictError
from core.shared.query import PageRequest
from tests.contracts.test_one_time_tokens import add_users
from tests.contracts.test_payment_records import NOW, recent


@pytest.fixture
async def users(identity_uow: IdentityUnitOfWorkFactory) -> list[int]:
    return await add_users(identity_uow, 2)


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

"""The `CreditLedger` contract, through the billing unit of work, on every adapter: in
memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from core.billing.errors import IdempotencyKeyTakenError
from core.billing.model import LedgerEntry, LedgerReason, Reservation
from core.billing.ports import BillingUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.errors import ConflictError
from core.shared.query import PageRequest
from tests.contracts.test_one_time_tokens import add_users

GRANT, SPEND = LedgerReason.GRANT, LedgerReason.SPEND


def entry(
    user_id: int,
    delta: int,
    key: str,
    *,
    source: str = "",
    note: str = "",
    reservation_id: int | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        user_id=user_id,
        delta=delta,
        reason=GRANT if delta >= 0 else SPEND,
        idempotency_key=key,
        source=source,
        note=note,
        reservation_id=reservation_id,
    )


async def apply(uow: BillingUnitOfWorkFactory, item: LedgerEntry) -> LedgerEntry | None:
    async with uow() as tx:
        stored = await tx.credits.apply(item)
        await tx.commit()
    return stored


async def balance_and_total(uow: BillingUnitOfWorkFactory, user_id: int) -> tuple[int, int]:
    async with uow(read_only=True) as tx:
        return await tx.credits.balance(user_id), await tx.credits.total(user_id)


async def all_entries(uow: BillingUnitOfWorkFactory, user_id: int) -> list[LedgerEntry]:
    found: list[LedgerEntry] = []
    cursor = None
    async with uow(read_only=True) as tx:
        while True:
            page = await tx.credits.entries(user_id, PageRequest(limit=100, cursor=cursor))
            found.extend(page.items)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor


async def test_a_user_without_credits_has_a_zero_balance_and_no_entries(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    assert await balance_and_total(billing_uow, alice) == (0, 0)
    assert await all_entries(billing_uow, alice) == []
    async with billing_uow(read_only=True) as tx:
        assert await tx.credits.find(alice, "anything") is None


async def test_apply_moves_the_balance_and_stores_the_stamped_entry(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    before = datetime.now(UTC) - timedelta(seconds=5)
    granted = await apply(
        billing_uow, entry(alice, 100, "grant-1", source="admin:7", note="welcome")
    )
    spent = await apply(billing_uow, entry(alice, -30, "spend-1", source="conversation:3"))
    assert granted is not None and spent is not None
    assert granted.id is not None and spent.id is not None and granted.id != spent.id
    assert (granted.balance_after, spent.balance_after) == (100, 70)
    for stored in (granted, spent):
        assert stored.created_at is not None
        assert stored.created_at.utcoffset() == timedelta(0)
        assert before <= stored.created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert await balance_and_total(billing_uow, alice) == (70, 70)
    async with billing_uow(read_only=True) as tx:
        found = await tx.credits.find(alice, "grant-1")
    assert found == granted
    assert (found.delta, found.reason, found.source, found.note) == (
        100,
        GRANT,
        "admin:7",
        "welcome",
    )
    assert found.reservation_id is None


async def test_nothing_is_durable_before_commit(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    async with billing_uow() as tx:
        await tx.credits.apply(entry(alice, 40, "grant-1"))
        # The unit sees its own change...
        assert await tx.credits.balance(alice) == 40
        assert await tx.credits.total(alice) == 40
        assert await tx.credits.find(alice, "grant-1") is not None
    # ...and it is gone with the unit; an explicit rollback too.
    assert await balance_and_total(billing_uow, alice) == (0, 0)
    async with billing_uow() as tx:
        await tx.credits.apply(entry(alice, 40, "grant-1"))
        await tx.rollback()
    assert await balance_and_total(billing_uow, alice) == (0, 0)
    assert await all_entries(billing_uow, alice) == []


async def test_a_result_below_zero_is_refused_and_writes_nothing(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    await apply(billing_uow, entry(alice, 10, "grant-1"))
    assert await apply(billing_uow, entry(alice, -11, "spend-1")) is None
    assert await balance_and_total(billing_uow, alice) == (10, 10)
    assert len(await all_entries(billing_uow, alice)) == 1
    # Control: the same key with an amount that fits is accepted (so the refusal was
    # the amount's, and the refused attempt kept nothing, not even its key).
    spent = await apply(billing_uow, entry(alice, -10, "spend-1"))
    assert spent is not None and spent.balance_after == 0
    assert await balance_and_total(billing_uow, alice) == (0, 0)
    # A user who never had credits cannot spend either, and gets no account for trying.
    assert await apply(billing_uow, entry(bob, -1, "spend-1")) is None
    assert await balance_and_total(billing_uow, bob) == (0, 0)
    assert await all_entries(billing_uow, bob) == []


async def test_a_refused_entry_leaves_the_rest_of_the_unit_to_commit(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    async with billing_uow() as tx:
        assert await tx.credits.apply(entry(alice, 5, "grant-1")) is not None
        assert await tx.credits.apply(entry(alice, -6, "spend-1")) is None
        assert await tx.credits.balance(alice) == 5
        await tx.commit()
    assert await balance_and_total(billing_uow, alice) == (5, 5)


async def test_a_key_is_used_once_per_user_and_a_repeat_changes_nothing(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    first = await apply(billing_uow, entry(alice, 10, "k"))
    with pytest.raises(IdempotencyKeyTakenError):
        await apply(billing_uow, entry(alice, 10, "k"))
    # Even when the unit goes on and commits, the refused entry moved nothing.
    async with billing_uow() as tx:
        with pytest.raises(IdempotencyKeyTakenError):
            await tx.credits.apply(entry(alice, -3, "k"))
        await tx.commit()
    assert await balance_and_total(billing_uow, alice) == (10, 10)
    async with billing_uow(read_only=True) as tx:
        assert await tx.credits.find(alice, "k") == first
    # Keys belong to a user: another user may use the same one.
    other = await apply(billing_uow, entry(bob, 7, "k"))
    assert other is not None and other.balance_after == 7


async def test_a_key_repeated_inside_one_unit_is_refused(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    async with billing_uow() as tx:
        await tx.credits.apply(entry(alice, 10, "k"))
        with pytest.raises(IdempotencyKeyTakenError):
            await tx.credits.apply(entry(alice, 20, "k"))
        assert await tx.credits.apply(entry(alice, 1, "k2")) is not None
        await tx.commit()
    assert await balance_and_total(billing_uow, alice) == (11, 11)


async def test_of_units_racing_with_one_key_exactly_one_commits(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await apply(billing_uow, entry(alice, 100, "grant-0"))

    async def attempt(delta: int) -> bool:
        try:
            async with billing_uow() as tx:
                stored = await tx.credits.apply(entry(alice, delta, "raced"))
                assert stored is not None
                await asyncio.sleep(0.02)  # overlap the units
                await tx.commit()
        except IdempotencyKeyTakenError:
            return False
        return True

    results = await asyncio.gather(attempt(-1), attempt(-2), attempt(-3))
    assert results.count(True) == 1
    delta = (-1, -2, -3)[results.index(True)]
    assert await balance_and_total(billing_uow, alice) == (100 + delta, 100 + delta)
    assert len(await all_entries(billing_uow, alice)) == 2


@pytest.mark.parametrize("first_commits", [True, False])
async def test_a_second_unit_waits_for_the_first_then_sees_its_outcome(
    identity_uow: IdentityUnitOfWorkFactory,
    billing_uow: BillingUnitOfWorkFactory,
    first_commits: bool,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await apply(billing_uow, entry(alice, 10, "grant-1"))
    async with billing_uow() as first:
        assert await first.credits.apply(entry(alice, -10, "spend-1")) is not None
        second = asyncio.create_task(apply(billing_uow, entry(alice, -10, "spend-2")))
        await asyncio.sleep(0.2)
        # The second unit is held up by the first one's lock on the account...
        assert not second.done()
        if first_commits:
            await first.commit()
        else:
            await first.rollback()
    # ...and then decides on what the first one left: nothing to spend, or all of it.
    stored = await asyncio.wait_for(second, timeout=30)
    if first_commits:
        assert stored is None
    else:
        assert stored is not None and stored.balance_after == 0
    assert await balance_and_total(billing_uow, alice) == (0, 0)


async def test_an_entry_needs_an_existing_user(billing_uow: BillingUnitOfWorkFactory) -> None:
    with pytest.raises(ConflictError):
        await apply(billing_uow, entry(424242, 5, "grant-1"))
    assert await balance_and_total(billing_uow, 424242) == (0, 0)


async def test_an_entry_names_an_existing_reservation_or_none(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await apply(billing_uow, entry(alice, 50, "grant-1"))
    async with billing_uow() as tx:
        with pytest.raises(ConflictError):
            await tx.credits.apply(entry(alice, -5, "reserve-1", reservation_id=987654))
        # A refused entry moved nothing, even if the unit commits.
        await tx.commit()
    assert await balance_and_total(billing_uow, alice) == (50, 50)
    # Control: naming a stored reservation is accepted and round-trips.
    async with billing_uow() as tx:
        held = await tx.reservations.add(
            Reservation(
                user_id=alice,
                amount=5,
                idempotency_key="call-1",
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
            )
        )
        stored = await tx.credits.apply(entry(alice, -5, "reserve-1", reservation_id=held.id))
        await tx.commit()
    assert stored is not None and stored.reservation_id == held.id
    async with billing_uow(read_only=True) as tx:
        found = await tx.credits.find(alice, "reserve-1")
    assert found is not None and found.reservation_id == held.id
    assert await balance_and_total(billing_uow, alice) == (45, 45)


async def test_the_balance_equals_the_sum_of_the_ledger_after_any_mix(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    rng = random.Random(10)
    expected = {alice: 0, bob: 0}
    refused = 0
    for n in range(40):
        user = rng.choice((alice, bob))
        delta = rng.randint(-30, 30)
        stored = await apply(billing_uow, entry(user, delta, f"op-{n}"))
        if expected[user] + delta < 0:
            assert stored is None
            refused += 1
        else:
            assert stored is not None and stored.balance_after == expected[user] + delta
            expected[user] += delta
        assert await balance_and_total(billing_uow, user) == (expected[user], expected[user])
    assert refused > 0  # the mix did include refusals
    for user in (alice, bob):
        # Oldest first, each entry's balance_after is the running sum of the deltas.
        chain = list(reversed(await all_entries(billing_uow, user)))
        running = 0
        for item in chain:
            running += item.delta
            assert item.balance_after == running
        assert running == expected[user]


async def test_entries_are_paged_newest_first_with_cursors(
    identity_uow: IdentityUnitOfWorkFactory, billing_uow: BillingUnitOfWorkFactory
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    for n in range(7):
        await apply(billing_uow, entry(alice, n + 1, f"grant-{n}"))
    await apply(billing_uow, entry(bob, 1, "grant-0"))
    pages = []
    cursor = None
    async with billing_uow(read_only=True) as tx:
        while True:
            page = await tx.credits.entries(alice, PageRequest(limit=3, cursor=cursor))
            assert page.total is None
            pages.append([item.idempotency_key for item in page.items])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert pages == [
        ["grant-6", "grant-5", "grant-4"],
        ["grant-3", "grant-2", "grant-1"],
        ["grant-0"],
    ]
    # A page that ends exactly at the last entry has no cursor.
    async with billing_uow(read_only=True) as tx:
        whole = await tx.credits.entries(alice, PageRequest(limit=7))
        assert len(whole.items) == 7 and whole.next_cursor is None
        assert [item.user_id for item in whole.items] == [alice] * 7
    # The unit's own new entry comes first.
    async with billing_uow() as tx:
        await tx.credits.apply(entry(alice, -1, "spend-0"))
        first = await tx.credits.entries(alice, PageRequest(limit=2))
        assert [item.idempotency_key for item in first.items] == ["spend-0", "grant-6"]


def _spenders(backend: str) -> tuple[int, int, int]:
    """(balance, concurrent spends of 1, rounds) for a backend."""
    if backend == "postgres":
        return 100, 200, 10
    if backend == "sqlite":
        return 25, 50, 2
    return 100, 200, 10


async def test_concurrent_spends_never_overdraw(
    identity_backend: tuple[str, str | None],
    identity_uow: IdentityUnitOfWorkFactory,
    billing_uow: BillingUnitOfWorkFactory,
) -> None:
    budget, spenders, rounds = _spenders(identity_backend[0])
    users = await add_users(identity_uow, rounds)
    for user in users:
        await apply(billing_uow, entry(user, budget, "grant"))

    async def spend(user: int, n: int) -> bool:
        async with billing_uow() as tx:
            stored = await tx.credits.apply(entry(user, -1, f"spend-{n}"))
            await asyncio.sleep(0)  # let the others run between the spend and the commit
            await tx.commit()
        return stored is not None

    for user in users:
        results = await asyncio.gather(*(spend(user, n) for n in range(spenders)))
        assert results.count(True) == budget
        assert await balance_and_total(billing_uow, user) == (0, 0)
        assert len(await all_entries(billing_uow, user)) == budget + 1

"""The `UserRepository` token cut-off (`end_tokens_before`) and row lock (`lock`), on
every adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from core.identity.model import Username
from core.identity.ports import IdentityUnitOfWorkFactory
from tests.contracts.test_one_time_tokens import add_users

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def cutoff(uow: IdentityUnitOfWorkFactory, user_id: int) -> datetime | None:
    async with uow(read_only=True) as tx:
        user = await tx.users.get(user_id, include_deleted=True)
    assert user is not None
    return user.tokens_valid_after


async def end_before(uow: IdentityUnitOfWorkFactory, user_id: int, at: datetime) -> bool:
    async with uow() as tx:
        found = await tx.users.end_tokens_before(user_id, at)
        await tx.commit()
    return found


async def test_new_users_have_no_cutoff_and_add_ignores_one(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    assert await cutoff(identity_uow, alice) is None


async def test_the_cutoff_moves_forward_only(identity_uow: IdentityUnitOfWorkFactory) -> None:
    alice, bob = await add_users(identity_uow, 2)
    later = NOW + timedelta(microseconds=250)
    assert await end_before(identity_uow, alice, later) is True
    assert await cutoff(identity_uow, alice) == later  # to the microsecond
    assert await end_before(identity_uow, alice, NOW) is True  # earlier: no change
    assert await cutoff(identity_uow, alice) == later
    assert await end_before(identity_uow, alice, later + timedelta(seconds=1)) is True
    assert await cutoff(identity_uow, alice) == later + timedelta(seconds=1)
    assert await cutoff(identity_uow, bob) is None
    assert await end_before(identity_uow, 999_999, NOW) is False


async def test_update_never_writes_the_cutoff(identity_uow: IdentityUnitOfWorkFactory) -> None:
    (alice,) = await add_users(identity_uow, 1)
    async with identity_uow(read_only=True) as tx:
        stale = await tx.users.get(alice)  # read before the cut-off moves
    assert stale is not None
    await end_before(identity_uow, alice, NOW)
    async with identity_uow() as tx:
        updated = await tx.users.update(
            stale.copy(username=Username("renamed"), tokens_valid_after=None)
        )
        await tx.commit()
    assert updated.username == Username("renamed")
    assert await cutoff(identity_uow, alice) == NOW
    # Nor can an update move it by itself.
    async with identity_uow() as tx:
        await tx.users.update(updated.copy(tokens_valid_after=NOW + timedelta(days=1)))
        await tx.commit()
    assert await cutoff(identity_uow, alice) == NOW


async def test_the_cutoff_of_a_deleted_user_still_moves_and_rolls_back(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    async with identity_uow() as tx:
        await tx.users.soft_delete(alice, NOW)
        assert await tx.users.end_tokens_before(alice, NOW) is True
        await tx.commit()
    assert await cutoff(identity_uow, alice) == NOW
    async with identity_uow() as tx:
        await tx.users.end_tokens_before(alice, NOW + timedelta(hours=1))
        # Not committed.
    assert await cutoff(identity_uow, alice) == NOW


async def test_lock_returns_active_users_only(identity_uow: IdentityUnitOfWorkFactory) -> None:
    alice, bob = await add_users(identity_uow, 2)
    async with identity_uow() as tx:
        await tx.users.soft_delete(bob, NOW)
        await tx.commit()
    async with identity_uow() as tx:
        locked = await tx.users.lock(alice)
        assert locked is not None and locked.id == alice
        assert await tx.users.lock(alice) is not None  # again in the same unit: fine
        assert await tx.users.lock(bob) is None
        assert await tx.users.lock(999_999) is None
        await tx.commit()


async def test_a_locked_user_is_locked_until_the_unit_of_work_ends(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    events: list[str] = []
    first_holds = asyncio.Event()

    async def first() -> None:
        async with identity_uow() as tx:
            await tx.users.lock(alice)
            events.append("first locked")
            first_holds.set()
            await asyncio.sleep(0.2)
            await tx.users.end_tokens_before(alice, NOW)
            events.append("first commits")
            await tx.commit()

    async def second() -> None:
        await first_holds.wait()
        async with identity_uow() as tx:
            user = await tx.users.lock(alice)
            events.append("second locked")
            # Locked after the first committed: it sees the first's change.
            assert user is not None and user.tokens_valid_after == NOW
            await tx.commit()

    await asyncio.wait_for(asyncio.gather(first(), second()), 10)
    assert events == ["first locked", "first commits", "second locked"]


async def test_a_lock_is_released_by_rollback(identity_uow: IdentityUnitOfWorkFactory) -> None:
    (alice,) = await add_users(identity_uow, 1)
    async with identity_uow() as tx:
        await tx.users.lock(alice)
        await tx.rollback()
    async with identity_uow() as tx:
        await tx.users.lock(alice)
        # Left without commit: released on exit.

    async def relock() -> None:
        async with identity_uow() as tx:
            assert await tx.users.lock(alice) is not None
            await tx.commit()

    await asyncio.wait_for(relock(), 5)

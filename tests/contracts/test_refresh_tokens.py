"""The `RefreshTokenRepository` contract, through the identity unit of work, on every
adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.identity.model import RefreshToken
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.errors import ConflictError
from core.shared.hashing import fingerprint
from tests.contracts.test_one_time_tokens import add_users

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = 24 * 3600


def token(name: str, user_id: int, family: str = "fam-a", *, lifetime: float = DAY) -> RefreshToken:
    return RefreshToken(
        token_hash=fingerprint(name),
        user_id=user_id,
        family_id=family,
        created_at=NOW,
        expires_at=NOW + timedelta(seconds=lifetime),
    )


async def store(uow: IdentityUnitOfWorkFactory, *tokens: RefreshToken) -> list[RefreshToken]:
    async with uow() as tx:
        stored = [await tx.refresh_tokens.add(t) for t in tokens]
        await tx.commit()
    return stored


async def get(uow: IdentityUnitOfWorkFactory, name: str) -> RefreshToken | None:
    async with uow(read_only=True) as tx:
        return await tx.refresh_tokens.get(fingerprint(name))


async def use(uow: IdentityUnitOfWorkFactory, name: str, at: datetime = NOW) -> RefreshToken | None:
    async with uow() as tx:
        used = await tx.refresh_tokens.use(fingerprint(name), at)
        await tx.commit()
    return used


async def test_add_stores_the_fingerprint_and_get_returns_it(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    (stored,) = await store(identity_uow, token("t1", alice))
    assert stored.id is not None
    assert stored.used_at is None and stored.revoked_at is None
    found = await get(identity_uow, "t1")
    assert found == stored
    assert found.family_id == "fam-a" and found.expires_at.utcoffset() == timedelta(0)
    assert found.created_at == NOW
    assert await get(identity_uow, "unknown") is None


async def test_a_token_is_used_once_and_get_still_finds_it(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(identity_uow, token("t1", alice))
    later = NOW + timedelta(seconds=5)
    used = await use(identity_uow, "t1", later)
    assert used is not None
    assert used.user_id == alice and used.family_id == "fam-a" and used.used_at == later
    assert await use(identity_uow, "t1", later) is None
    found = await get(identity_uow, "t1")
    assert found is not None and found.used_at == later and not found.is_usable(later)
    # Twice in one transaction: the second is refused as well.
    await store(identity_uow, token("t2", alice))
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.use(fingerprint("t2"), NOW) is not None
        assert await tx.refresh_tokens.use(fingerprint("t2"), NOW) is None
        await tx.commit()


async def test_use_refuses_expired_revoked_and_unknown_tokens_without_using_them(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(identity_uow, token("t1", alice, lifetime=60), token("t2", alice, "fam-b"))
    assert await use(identity_uow, "nope") is None
    assert await use(identity_uow, "t1", NOW + timedelta(seconds=60)) is None  # expired
    assert await use(identity_uow, "t1", NOW + timedelta(seconds=59)) is not None
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.revoke_family("fam-b", NOW) == 1
        await tx.commit()
    assert await use(identity_uow, "t2") is None
    revoked = await get(identity_uow, "t2")
    assert revoked is not None and revoked.revoked_at == NOW and revoked.used_at is None


async def test_a_use_that_rolls_back_leaves_the_token_usable(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(identity_uow, token("t1", alice))
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.use(fingerprint("t1"), NOW) is not None
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.use(fingerprint("t1"), NOW) is not None
        await tx.rollback()
    found = await get(identity_uow, "t1")
    assert found is not None and found.used_at is None
    assert await use(identity_uow, "t1") is not None


async def test_concurrent_users_of_one_token_let_exactly_one_win(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(identity_uow, token("t1", alice))

    async def attempt() -> bool:
        async with identity_uow() as tx:
            used = await tx.refresh_tokens.use(fingerprint("t1"), NOW)
            await asyncio.sleep(0.02)  # overlap the attempts
            await tx.commit()
            return used is not None

    results = await asyncio.gather(*(attempt() for _ in range(8)))
    assert results.count(True) == 1


async def test_revoke_family_ends_every_token_of_the_family_only(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    await store(
        identity_uow,
        token("a1", alice, "fam-a"),
        token("a2", alice, "fam-a"),
        token("a3", alice, "fam-other"),
        token("b1", bob, "fam-b"),
    )
    assert await use(identity_uow, "a1") is not None  # used tokens are revoked too
    later = NOW + timedelta(seconds=1)
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.revoke_family("fam-a", later) == 2
        await tx.commit()
    for name in ("a1", "a2"):
        found = await get(identity_uow, name)
        assert found is not None and found.revoked_at == later
    assert await use(identity_uow, "a2") is None
    assert await use(identity_uow, "a3") is not None
    assert await use(identity_uow, "b1") is not None
    async with identity_uow() as tx:
        # Already revoked: nothing left to end; the first time is kept.
        assert await tx.refresh_tokens.revoke_family("fam-a", later + timedelta(seconds=1)) == 0
        await tx.commit()
    assert (await get(identity_uow, "a1")).revoked_at == later  # type: ignore[union-attr]


async def test_revoke_all_for_user_can_keep_one_family(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    await store(
        identity_uow,
        token("a1", alice, "fam-1"),
        token("a2", alice, "fam-2"),
        token("a3", alice, "fam-3"),
        token("b1", bob, "fam-b"),
    )
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.revoke_all_for_user(alice, NOW, keep_family="fam-2") == 2
        await tx.commit()
    assert await use(identity_uow, "a1") is None
    assert await use(identity_uow, "a3") is None
    assert await use(identity_uow, "a2") is not None
    assert await use(identity_uow, "b1") is not None
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.revoke_all_for_user(alice, NOW) == 1  # fam-2's a2
        # Uncommitted: rolled back on exit.
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.revoke_all_for_user(alice, NOW) == 1
        await tx.commit()
    assert (await get(identity_uow, "a2")).revoked_at == NOW  # type: ignore[union-attr]


async def test_purge_deletes_expired_tokens_only(identity_uow: IdentityUnitOfWorkFactory) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(
        identity_uow,
        token("short", alice, lifetime=60),
        token("short-used", alice, lifetime=60),
        token("long", alice, lifetime=3600),
        token("long-revoked", alice, "fam-b", lifetime=3600),
    )
    assert await use(identity_uow, "short-used") is not None
    async with identity_uow() as tx:
        await tx.refresh_tokens.revoke_family("fam-b", NOW)
        await tx.commit()
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.purge_expired(NOW + timedelta(seconds=60)) == 2
        await tx.commit()
    assert await get(identity_uow, "short") is None
    assert await get(identity_uow, "short-used") is None
    assert await get(identity_uow, "long") is not None
    assert await get(identity_uow, "long-revoked") is not None
    # A purge that rolls back deletes nothing.
    async with identity_uow() as tx:
        assert await tx.refresh_tokens.purge_expired(NOW + timedelta(hours=2)) == 2
    assert await get(identity_uow, "long") is not None


async def test_a_fingerprint_is_stored_once(identity_uow: IdentityUnitOfWorkFactory) -> None:
    alice, bob = await add_users(identity_uow, 2)
    await store(identity_uow, token("t1", alice))
    with pytest.raises(ConflictError):
        await store(identity_uow, token("t1", bob, "fam-b"))
    assert (await get(identity_uow, "t1")).user_id == alice  # type: ignore[union-attr]

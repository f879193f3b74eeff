"""The `OneTimeTokenRepository` contract, through the identity unit of work, on every
adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.identity.model import Email, OneTimeToken, TokenPurpose, User, Username
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.errors import ConflictError
from core.shared.hashing import fingerprint

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RESET = TokenPurpose.PASSWORD_RESET
VERIFY = TokenPurpose.EMAIL_VERIFICATION


async def add_users(uow: IdentityUnitOfWorkFactory, count: int) -> list[int]:
    """Store `count` users and return their ids (tokens need an account to point at)."""
    async with uow() as tx:
        users = [
            await tx.users.add(
                User(
                    email=Email(f"user{n}@example.com"),
                    username=Username(f"user{n}"),
                    password_hash="x",
                )
            )
            for n in range(1, count + 1)
        ]
        await tx.commit()
    return [user.id for user in users if user.id is not None]


def token(
    name: str, user_id: int, purpose: TokenPurpose = RESET, *, lifetime: float = 1800
) -> OneTimeToken:
    return OneTimeToken(
        token_hash=fingerprint(name),
        user_id=user_id,
        purpose=purpose,
        created_at=NOW,
        expires_at=NOW + timedelta(seconds=lifetime),
    )


async def store(uow: IdentityUnitOfWorkFactory, *tokens: OneTimeToken) -> list[OneTimeToken]:
    async with uow() as tx:
        stored = [await tx.one_time_tokens.add(t) for t in tokens]
        await tx.commit()
    return stored


async def consume(
    uow: IdentityUnitOfWorkFactory, name: str, purpose: TokenPurpose = RESET, at: datetime = NOW
) -> int | None:
    async with uow() as tx:
        user_id = await tx.one_time_tokens.consume(fingerprint(name), purpose, at)
        await tx.commit()
    return user_id


async def usable(
    uow: IdentityUnitOfWorkFactory, name: str, purpose: TokenPurpose = RESET, at: datetime = NOW
) -> OneTimeToken | None:
    async with uow(read_only=True) as tx:
        return await tx.one_time_tokens.find_usable(fingerprint(name), purpose, at)


async def test_add_stores_the_fingerprint_and_find_usable_returns_it(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    (stored,) = await store(identity_uow, token("t1", alice))
    assert stored.id is not None and stored.used_at is None
    found = await usable(identity_uow, "t1")
    assert found == stored
    assert found.token_hash == fingerprint("t1") and found.expires_at.utcoffset() == timedelta(0)
    assert await usable(identity_uow, "t1", VERIFY) is None  # another purpose
    assert await usable(identity_uow, "unknown") is None
    # Usable up to, not including, the expiry instant.
    assert await usable(identity_uow, "t1", at=NOW + timedelta(seconds=1799)) is not None
    assert await usable(identity_uow, "t1", at=NOW + timedelta(seconds=1800)) is None


async def test_a_token_is_consumed_once(identity_uow: IdentityUnitOfWorkFactory) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(identity_uow, token("t1", alice))
    later = NOW + timedelta(seconds=5)
    assert await consume(identity_uow, "t1", at=later) == alice
    assert await consume(identity_uow, "t1", at=later) is None
    assert await usable(identity_uow, "t1", at=later) is None
    # Twice in one transaction: the second is refused as well.
    await store(identity_uow, token("t2", alice))
    async with identity_uow() as tx:
        assert await tx.one_time_tokens.consume(fingerprint("t2"), RESET, NOW) == alice
        assert await tx.one_time_tokens.consume(fingerprint("t2"), RESET, NOW) is None
        await tx.commit()


async def test_consume_refuses_wrong_purpose_expiry_and_unknown_tokens_without_using_them(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(identity_uow, token("t1", alice, RESET, lifetime=60))
    assert await consume(identity_uow, "t1", VERIFY) is None
    assert await consume(identity_uow, "nope") is None
    assert await consume(identity_uow, "t1", at=NOW + timedelta(seconds=60)) is None  # expired
    # None of those used it up.
    assert await consume(identity_uow, "t1", at=NOW + timedelta(seconds=59)) == alice


async def test_a_consumption_that_rolls_back_leaves_the_token_usable(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(identity_uow, token("t1", alice))
    async with identity_uow() as tx:
        assert await tx.one_time_tokens.consume(fingerprint("t1"), RESET, NOW) == alice
        # Not committed: leaving the block rolls back.
    async with identity_uow() as tx:
        assert await tx.one_time_tokens.consume(fingerprint("t1"), RESET, NOW) == alice
        await tx.rollback()
    assert await usable(identity_uow, "t1") is not None
    assert await consume(identity_uow, "t1") == alice


async def test_concurrent_consumers_of_one_token_let_exactly_one_win(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(identity_uow, token("t1", alice))

    async def attempt() -> int | None:
        async with identity_uow() as tx:
            user_id = await tx.one_time_tokens.consume(fingerprint("t1"), RESET, NOW)
            # Stay open a little so the attempts overlap.
            await asyncio.sleep(0.02)
            await tx.commit()
            return user_id

    results = await asyncio.gather(*(attempt() for _ in range(8)))
    assert results.count(alice) == 1
    assert results.count(None) == 7


async def test_invalidate_ends_the_unused_tokens_of_one_user_and_purpose(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    await store(
        identity_uow,
        token("a-reset-1", alice),
        token("a-reset-2", alice),
        token("a-reset-used", alice),
        token("a-verify", alice, VERIFY),
        token("b-reset", bob),
    )
    assert await consume(identity_uow, "a-reset-used") == alice
    async with identity_uow() as tx:
        assert await tx.one_time_tokens.invalidate_for_user(alice, RESET, NOW) == 2
        await tx.commit()
    assert await usable(identity_uow, "a-reset-1") is None
    assert await usable(identity_uow, "a-reset-2") is None
    assert await usable(identity_uow, "a-verify", VERIFY) is not None
    assert await usable(identity_uow, "b-reset") is not None
    async with identity_uow() as tx:
        assert await tx.one_time_tokens.invalidate_for_user(alice, RESET, NOW) == 0


async def test_purge_deletes_expired_tokens_only(identity_uow: IdentityUnitOfWorkFactory) -> None:
    (alice,) = await add_users(identity_uow, 1)
    await store(
        identity_uow,
        token("short", alice, lifetime=60),
        token("short-used", alice, lifetime=60),
        token("long", alice, lifetime=3600),
        token("long-used", alice, lifetime=3600),
    )
    assert await consume(identity_uow, "short-used") == alice
    assert await consume(identity_uow, "long-used") == alice
    async with identity_uow() as tx:
        assert await tx.one_time_tokens.purge_expired(NOW + timedelta(seconds=60)) == 2
        await tx.commit()
    async with identity_uow() as tx:
        # Gone: adding the same fingerprint again is allowed now.
        await tx.one_time_tokens.add(token("short", alice))
        assert await tx.one_time_tokens.purge_expired(NOW + timedelta(seconds=60)) == 0
        await tx.commit()
    assert await usable(identity_uow, "long", at=NOW + timedelta(seconds=60)) is not None
    # A purge that rolls back deletes nothing.
    async with identity_uow() as tx:
        assert await tx.one_time_tokens.purge_expired(NOW + timedelta(hours=2)) == 3
    assert await usable(identity_uow, "long", at=NOW + timedelta(seconds=61)) is not None


async def test_a_fingerprint_is_stored_once(identity_uow: IdentityUnitOfWorkFactory) -> None:
    alice, bob = await add_users(identity_uow, 2)
    await store(identity_uow, token("t1", alice))
    with pytest.raises(ConflictError):
        await store(identity_uow, token("t1", bob, VERIFY))
    assert (await usable(identity_uow, "t1")).user_id == alice  # type: ignore[union-attr]

"""The `OAuthIdentityRepository` contract, through the identity unit of work, on every
adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.identity.oauth_errors import OAuthIdentityTakenError
from core.identity.oauth_model import OAuthIdentity
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.errors import ConflictError
from tests.contracts.test_one_time_tokens import add_users

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def link(
    user_id: int,
    subject: str = "1001",
    provider: str = "github",
    *,
    created_at: datetime = NOW,
) -> OAuthIdentity:
    return OAuthIdentity(
        user_id=user_id,
        provider=provider,
        subject=subject,
        email="ada@example.com",
        created_at=created_at,
    )


async def store(uow: IdentityUnitOfWorkFactory, *links: OAuthIdentity) -> list[OAuthIdentity]:
    async with uow() as tx:
        stored = [await tx.oauth_identities.add(item) for item in links]
        await tx.commit()
    return stored


async def get(uow: IdentityUnitOfWorkFactory, provider: str, subject: str) -> OAuthIdentity | None:
    async with uow(read_only=True) as tx:
        return await tx.oauth_identities.get(provider, subject)


async def test_add_assigns_an_id_and_get_finds_the_link(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    (alice,) = await add_users(identity_uow, 1)
    (stored,) = await store(identity_uow, link(alice))
    assert stored.id is not None
    found = await get(identity_uow, "github", "1001")
    assert found == stored
    assert found.user_id == alice and found.email == "ada@example.com"
    assert found.created_at == NOW and found.created_at.utcoffset() == timedelta(0)
    assert await get(identity_uow, "github", "9999") is None
    assert await get(identity_uow, "google", "1001") is None


async def test_nothing_is_stored_before_commit(identity_uow: IdentityUnitOfWorkFactory) -> None:
    (alice,) = await add_users(identity_uow, 1)
    async with identity_uow() as tx:
        await tx.oauth_identities.add(link(alice))
        # Visible inside the transaction that wrote it...
        assert await tx.oauth_identities.get("github", "1001") is not None
    # ...and gone with its rollback.
    assert await get(identity_uow, "github", "1001") is None
    async with identity_uow() as tx:
        await tx.oauth_identities.add(link(alice))
        await tx.rollback()
    assert await get(identity_uow, "github", "1001") is None


async def test_a_provider_account_is_linked_once(identity_uow: IdentityUnitOfWorkFactory) -> None:
    alice, bob = await add_users(identity_uow, 2)
    await store(identity_uow, link(alice))
    with pytest.raises(OAuthIdentityTakenError):
        await store(identity_uow, link(bob))
    # The same subject at another provider is another account.
    await store(identity_uow, link(bob, provider="google"))
    assert (await get(identity_uow, "github", "1001")).user_id == alice  # type: ignore[union-attr]
    assert (await get(identity_uow, "google", "1001")).user_id == bob  # type: ignore[union-attr]


async def test_concurrent_first_links_let_exactly_one_win(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    users = await add_users(identity_uow, 4)

    async def attempt(user_id: int) -> bool:
        try:
            async with identity_uow() as tx:
                await tx.oauth_identities.add(link(user_id, subject="555"))
                await asyncio.sleep(0.02)  # overlap the attempts
                await tx.commit()
        except OAuthIdentityTakenError:
            return False
        return True

    results = await asyncio.gather(*(attempt(user_id) for user_id in users))
    assert results.count(True) == 1
    winner = users[results.index(True)]
    assert (await get(identity_uow, "github", "555")).user_id == winner  # type: ignore[union-attr]


async def test_list_for_user_returns_the_users_links_oldest_first(
    identity_uow: IdentityUnitOfWorkFactory,
) -> None:
    alice, bob = await add_users(identity_uow, 2)
    later = NOW + timedelta(minutes=5)
    await store(
        identity_uow,
        link(alice, "g-1", provider="google", created_at=later),
        link(alice, "gh-1", created_at=NOW),
        link(bob, "gh-2"),
    )
    async with identity_uow(read_only=True) as tx:
        links = await tx.oauth_identities.list_for_user(alice)
        assert [(x.provider, x.subject) for x in links] == [("github", "gh-1"), ("google", "g-1")]
        assert await tx.oauth_identities.list_for_user(bob + 100) == []


async def test_a_link_needs_an_existing_user(identity_uow: IdentityUnitOfWorkFactory) -> None:
    with pytest.raises(ConflictError):
        await store(identity_uow, link(424242))
    assert await get(identity_uow, "github", "1001") is None

"""The identity rules, with every port in memory (no sockets, no sleeps)."""

from __future__ import annotations

import pytest

from core.identity.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    SessionNotFoundError,
    UsernameTakenError,
    WeakPasswordError,
    WrongPasswordError,
)
from core.identity.model import Email, Username
from core.shared.hashing import fingerprint
from tests.unit.core.identity_world import PASSWORD, World


def _world() -> World:
    # Sign-in throttling has its own tests; here it must not get in the way.
    return World(rate_limit={"login_per_account": 10, "login_per_address": 100})


@pytest.fixture
def world() -> World:
    return _world()


async def test_register_stores_a_hash_and_normalised_email(world: World) -> None:
    user = await world.accounts.register("Ada@Example.com", "ada", PASSWORD)
    assert user.id is not None and user.email == Email("ada@example.com")
    assert user.password_hash != PASSWORD and PASSWORD not in user.password_hash
    assert user.tier_code == "free" and not user.is_superuser and not user.email_verified


async def test_register_conflicts(world: World) -> None:
    await world.accounts.register("ada@example.com", "ada", PASSWORD)
    with pytest.raises(EmailTakenError):
        await world.accounts.register("ADA@example.com", "other", PASSWORD)
    with pytest.raises(UsernameTakenError):
        await world.accounts.register("other@example.com", "ada", PASSWORD)
    with pytest.raises(WeakPasswordError):
        await world.accounts.register("new@example.com", "newbie", "password1234")


async def test_login_issues_a_new_token_and_kills_the_previous_one(world: World) -> None:
    await world.accounts.register("ada@example.com", "ada", PASSWORD)
    first = await world.auth.login("ada@example.com", PASSWORD)
    second = await world.auth.login("ada@example.com", PASSWORD, previous_token=first.token)
    assert first.token != second.token
    assert len(second.token) >= 43  # 256 bits, base64url
    assert await world.auth.authenticate(first.token) is None
    assert await world.auth.authenticate(second.token) is not None
    # the store is keyed by the fingerprint, never the token itself
    assert second.session.token_hash == fingerprint(second.token)


async def test_unknown_email_and_wrong_password_fail_alike(world: World) -> None:
    await world.accounts.register("ada@example.com", "ada", PASSWORD)
    errors = []
    for email, password in [
        ("nobody@example.com", PASSWORD),
        ("ada@example.com", "wrong password here"),
        ("not-an-email", PASSWORD),
    ]:
        with pytest.raises(InvalidCredentialsError) as caught:
            await world.auth.login(email, password)
        errors.append((type(caught.value), caught.value.code, caught.value.detail))
    assert len(set(errors)) == 1


async def test_sessions_expire_idle_and_absolute(world: World) -> None:
    await world.accounts.register("ada@example.com", "ada", PASSWORD)
    login = await world.auth.login("ada@example.com", PASSWORD)
    world.clock.advance(599)
    assert await world.auth.authenticate(login.token) is not None  # touches: idle restarts
    world.clock.advance(599)
    assert await world.auth.authenticate(login.token) is not None
    world.clock.advance(601)
    assert await world.auth.authenticate(login.token) is None

    login = await world.auth.login("ada@example.com", PASSWORD)
    for _ in range(7):  # active every 9 minutes, but the absolute hour still ends it
        world.clock.advance(540)
        alive = await world.auth.authenticate(login.token)
    assert alive is None


async def test_logout_all_keeps_only_the_current_session(world: World) -> None:
    user = await world.accounts.register("ada@example.com", "ada", PASSWORD)
    a = await world.auth.login("ada@example.com", PASSWORD)
    b = await world.auth.login("ada@example.com", PASSWORD)
    c = await world.auth.login("ada@example.com", PASSWORD)
    assert user.id is not None
    assert await world.auth.logout_all(user.id, keep_token=b.token) == 2
    assert [await world.auth.authenticate(t.token) is not None for t in (a, b, c)] == [
        False,
        True,
        False,
    ]


async def test_revoking_someone_elses_session_is_not_found(world: World) -> None:
    ada = await world.accounts.register("ada@example.com", "ada", PASSWORD)
    bob = await world.accounts.register("bob@example.com", "bob", PASSWORD)
    bobs = await world.auth.login("bob@example.com", PASSWORD)
    assert ada.id is not None and bob.id is not None and bobs.session.id is not None
    with pytest.raises(SessionNotFoundError):
        await world.auth.revoke_session(ada.id, bobs.session.id)
    assert await world.auth.authenticate(bobs.token) is not None
    await world.auth.revoke_session(bob.id, bobs.session.id)
    assert await world.auth.authenticate(bobs.token) is None


async def test_password_change_ends_other_sessions(world: World) -> None:
    user = await world.accounts.register("ada@example.com", "ada", PASSWORD)
    here = await world.auth.login("ada@example.com", PASSWORD)
    there = await world.auth.login("ada@example.com", PASSWORD)
    assert user.id is not None
    with pytest.raises(WrongPasswordError):
        await world.accounts.change_password(user.id, "not my password", "brand new passphrase")
    await world.accounts.change_password(
        user.id, PASSWORD, "brand new passphrase", keep_session_token=here.token
    )
    assert await world.auth.authenticate(here.token) is not None
    assert await world.auth.authenticate(there.token) is None
    with pytest.raises(InvalidCredentialsError):
        await world.auth.login("ada@example.com", PASSWORD)
    await world.auth.login("ada@example.com", "brand new passphrase")


async def test_delete_account_is_soft_needs_password_and_ends_sessions(world: World) -> None:
    user = await world.accounts.register("ada@example.com", "ada", PASSWORD)
    login = await world.auth.login("ada@example.com", PASSWORD)
    assert user.id is not None
    with pytest.raises(WrongPasswordError):
        await world.accounts.delete_account(user.id, "not my password")
    await world.accounts.delete_account(user.id, PASSWORD)
    assert await world.auth.authenticate(login.token) is None
    with pytest.raises(InvalidCredentialsError):
        await world.auth.login("ada@example.com", PASSWORD)
    async with world.uow() as uow:
        kept = await uow.users.get(user.id, include_deleted=True)
    assert kept is not None and kept.deleted_at == world.clock.now()
    with pytest.raises(EmailTakenError):  # the address stays taken
        await world.accounts.register("ada@example.com", "ada2", PASSWORD)


async def test_update_profile_only_touches_the_username(world: World) -> None:
    user = await world.accounts.register("ada@example.com", "ada", PASSWORD)
    await world.accounts.register("bob@example.com", "bob", PASSWORD)
    assert user.id is not None
    with pytest.raises(UsernameTakenError):
        await world.accounts.update_profile(user.id, username="bob")
    updated = await world.accounts.update_profile(user.id, username="countess")
    assert updated.username == Username("countess") and updated.tier_code == user.tier_code


async def test_login_rehashes_when_parameters_change(world: World) -> None:
    user = await world.accounts.register("ada@example.com", "ada", PASSWORD)
    world.hasher.version += 1  # new parameters: old hashes need a rehash
    await world.auth.login("ada@example.com", PASSWORD)
    assert user.id is not None
    async with world.uow() as uow:
        stored = await uow.users.get(user.id)
    assert stored is not None and stored.password_hash != user.password_hash
    assert not world.hasher.needs_rehash(stored.password_hash)

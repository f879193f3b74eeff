"""The bearer-token rules (`TokenService`), every port in memory, time on a manual clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from adapters.memory.access_tokens import InMemoryAccessTokenCodec
from core.audit.model import AuditOutcome
from core.identity.errors import (
    InvalidAccessTokenError,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
)
from core.identity.model import TokenPurpose
from core.identity.ports import AccessTokenCodec
from core.identity.service import TokenPair, TokenPolicy
from core.shared.context import ClientInfo
from core.shared.hashing import fingerprint
from tests.unit.core.identity_world import NEW_PASSWORD, PASSWORD, World, token_in

ACCESS_TTL = 900
REFRESH_TTL = 30 * 24 * 3600
CLIENT = ClientInfo(ip="203.0.113.9", user_agent="PorticoApp/1.0")


class TokenWorld(World):
    def __init__(self) -> None:
        self.codec = InMemoryAccessTokenCodec()
        super().__init__(
            ports={AccessTokenCodec: self.codec},
            tokens={"access_ttl_seconds": ACCESS_TTL, "refresh_ttl_seconds": REFRESH_TTL},
        )

    async def user(self, n: int = 1) -> int:
        user = await self.accounts.register(f"user{n}@example.com", f"user{n}", PASSWORD)
        assert user.id is not None
        return user.id

    async def sign_in(self, n: int = 1) -> TokenPair:
        return await self.api_tokens.issue_pair(f"user{n}@example.com", PASSWORD, client=CLIENT)

    async def works(self, pair: TokenPair) -> bool:
        try:
            await self.api_tokens.authenticate(pair.access_token)
        except InvalidAccessTokenError:
            return False
        return True

    async def refreshes(self, refresh_token: str) -> TokenPair | None:
        try:
            return await self.api_tokens.refresh(refresh_token, client=CLIENT)
        except InvalidRefreshTokenError:
            return None


@pytest.fixture
def world() -> TokenWorld:
    return TokenWorld()


async def test_sign_in_issues_a_pair_that_authenticates(world: TokenWorld) -> None:
    user_id = await world.user()
    pair = await world.sign_in()
    assert pair.user_id == user_id and pair.expires_in == ACCESS_TTL
    assert pair.token_type == "Bearer"
    assert pair.refresh_token not in repr(pair) and pair.access_token not in repr(pair)
    found = await world.api_tokens.authenticate(pair.access_token)
    assert found.user.id == user_id
    assert found.claims.subject == user_id
    assert found.claims.expires_at - found.claims.issued_at == timedelta(seconds=ACCESS_TTL)
    # Only the fingerprint of the refresh token is stored, in a new family.
    async with world.uow(read_only=True) as tx:
        stored = await tx.refresh_tokens.get(fingerprint(pair.refresh_token))
    assert stored is not None and stored.family_id == found.claims.family_id
    assert stored.expires_at == world.clock.now() + timedelta(seconds=REFRESH_TTL)
    (entry,) = await world.audit(action="auth.token_issued")
    assert entry.outcome is AuditOutcome.SUCCESS and entry.actor_id == user_id
    assert entry.ip == CLIENT.ip and entry.details["family"] == stored.family_id


async def test_every_sign_in_starts_its_own_family(world: TokenWorld) -> None:
    await world.user()
    first, second = await world.sign_in(), await world.sign_in()
    a = await world.api_tokens.authenticate(first.access_token)
    b = await world.api_tokens.authenticate(second.access_token)
    assert a.claims.family_id != b.claims.family_id
    assert first.refresh_token != second.refresh_token


async def test_unknown_email_and_wrong_password_fail_alike_and_are_audited(
    world: TokenWorld,
) -> None:
    user_id = await world.user()
    for email, password in [
        ("user1@example.com", "wrong password 123"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
    ]:
        with pytest.raises(InvalidCredentialsError) as caught:
            await world.api_tokens.issue_pair(email, password, client=CLIENT)
        assert caught.value.code == "invalid_credentials"
    failures = await world.audit(action="auth.token_issued", outcome="failure")
    assert len(failures) == 3
    assert {entry.details["reason"] for entry in failures} == {"wrong_password", "unknown_account"}
    assert [e.target_id for e in failures if e.details["reason"] == "wrong_password"] == [
        str(user_id)
    ]
    async with world.uow(read_only=True) as tx:
        assert await tx.refresh_tokens.purge_expired(world.clock.now() + timedelta(days=999)) == 0


async def test_a_deleted_account_cannot_sign_in(world: TokenWorld) -> None:
    user_id = await world.user()
    await world.accounts.delete_account(user_id, PASSWORD)
    with pytest.raises(InvalidCredentialsError):
        await world.sign_in()


async def test_refresh_rotates_and_the_old_refresh_token_is_dead(world: TokenWorld) -> None:
    await world.user()
    first = await world.sign_in()
    world.clock.advance(60)
    second = await world.refreshes(first.refresh_token)
    assert second is not None
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    a = await world.api_tokens.authenticate(first.access_token)
    b = await world.api_tokens.authenticate(second.access_token)
    assert a.claims.family_id == b.claims.family_id  # same sign-in
    assert b.claims.issued_at == world.clock.now()
    # And again with the new one.
    third = await world.refreshes(second.refresh_token)
    assert third is not None
    (entry, _) = await world.audit(action="auth.token_refreshed")
    assert entry.outcome is AuditOutcome.SUCCESS


async def test_reuse_of_a_rotated_refresh_token_revokes_the_whole_family(
    world: TokenWorld,
) -> None:
    await world.user()
    stolen = await world.sign_in()
    other_device = await world.sign_in()
    rotated = await world.refreshes(stolen.refresh_token)
    newest = await world.refreshes(rotated.refresh_token)  # type: ignore[union-attr]
    assert newest is not None
    # The old token comes back (a thief, or a replay): refused, and the family ends.
    assert await world.refreshes(stolen.refresh_token) is None
    assert await world.refreshes(newest.refresh_token) is None
    assert await world.refreshes(rotated.refresh_token) is None  # type: ignore[union-attr]
    # Another sign-in of the same user is not touched.
    assert await world.refreshes(other_device.refresh_token) is not None
    # Each replay of a used token is on record; the first one ended the three tokens.
    entries = await world.audit(action="auth.token_reused")
    assert sorted((e.outcome, e.details["reason"], e.details["ended"]) for e in entries) == [
        (AuditOutcome.FAILURE, "used", 0),
        (AuditOutcome.FAILURE, "used", 3),
    ]


async def test_unknown_expired_and_revoked_refresh_tokens_are_refused_alike(
    world: TokenWorld,
) -> None:
    await world.user()
    assert await world.refreshes("no-such-token") is None
    pair = await world.sign_in()
    world.clock.advance(REFRESH_TTL)
    with pytest.raises(InvalidRefreshTokenError) as caught:
        await world.api_tokens.refresh(pair.refresh_token)
    assert caught.value.code == "invalid_refresh_token"
    # An expired token is not reuse: nothing was revoked or audited as such.
    assert await world.audit(action="auth.token_reused") == []
    revoked = await world.sign_in()
    await world.api_tokens.revoke(revoked.refresh_token)
    assert await world.refreshes(revoked.refresh_token) is None
    assert await world.audit(action="auth.token_reused") == []


async def test_concurrent_refreshes_with_one_token_let_one_win_and_end_the_family(
    world: TokenWorld,
) -> None:
    await world.user()
    pair = await world.sign_in()
    results = await asyncio.gather(*(world.refreshes(pair.refresh_token) for _ in range(4)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    # The losers presented a used token: reuse, so even the winner's new token is dead.
    assert await world.refreshes(winners[0].refresh_token) is None


async def test_revoke_ends_the_family_and_accepts_anything(world: TokenWorld) -> None:
    user_id = await world.user()
    pair = await world.sign_in()
    rotated = await world.refreshes(pair.refresh_token)
    assert rotated is not None
    await world.api_tokens.revoke(pair.refresh_token, client=CLIENT)  # an old token will do
    assert await world.refreshes(rotated.refresh_token) is None
    await world.api_tokens.revoke(pair.refresh_token)  # again: nothing happens
    await world.api_tokens.revoke("never-issued")
    (entry,) = await world.audit(action="auth.token_revoked")
    assert entry.actor_id == user_id and entry.details["ended"] == 2
    # The access token lives on until it expires; then it is refused.
    assert await world.works(rotated)
    world.clock.advance(ACCESS_TTL)
    assert not await world.works(rotated)


async def test_sign_out_ends_one_sign_in(world: TokenWorld) -> None:
    user_id = await world.user()
    this, other = await world.sign_in(), await world.sign_in()
    found = await world.api_tokens.authenticate(this.access_token)
    assert await world.api_tokens.sign_out(user_id, found.claims.family_id) == 1
    assert await world.api_tokens.sign_out(user_id, found.claims.family_id) == 0
    assert await world.refreshes(this.refresh_token) is None
    assert await world.refreshes(other.refresh_token) is not None


async def test_access_tokens_expire_and_garbage_is_refused(world: TokenWorld) -> None:
    await world.user()
    pair = await world.sign_in()
    world.clock.advance(ACCESS_TTL - 1)
    assert await world.works(pair)
    world.clock.advance(1)
    assert not await world.works(pair)
    for garbage in ("", "x", pair.refresh_token):  # a refresh token is no access token
        with pytest.raises(InvalidAccessTokenError):
            await world.api_tokens.authenticate(garbage)


async def test_logout_all_ends_every_token_at_once(world: TokenWorld) -> None:
    user_id = await world.user()
    other_user = await world.user(2)
    first, second = await world.sign_in(), await world.sign_in()
    bystander = await world.sign_in(2)
    world.clock.advance(1)
    await world.auth.logout_all(user_id)
    assert not await world.works(first) and not await world.works(second)
    assert await world.refreshes(first.refresh_token) is None
    assert await world.refreshes(second.refresh_token) is None
    assert await world.works(bystander)
    assert await world.refreshes(bystander.refresh_token) is not None
    assert other_user != user_id
    # Signing in again right away works (at the very same instant too).
    again = await world.sign_in()
    assert await world.works(again)
    assert await world.refreshes(again.refresh_token) is not None


async def test_logout_all_can_keep_the_callers_sign_in(world: TokenWorld) -> None:
    user_id = await world.user()
    mine, other = await world.sign_in(), await world.sign_in()
    family = (await world.api_tokens.authenticate(mine.access_token)).claims.family_id
    world.clock.advance(1)
    await world.auth.logout_all(user_id, keep_token_family=family)
    # Every access token ends, the caller's too; its refresh token stays good.
    assert not await world.works(mine)
    assert await world.refreshes(other.refresh_token) is None
    fresh = await world.refreshes(mine.refresh_token)
    assert fresh is not None and await world.works(fresh)


async def test_password_change_ends_other_tokens(world: TokenWorld) -> None:
    user_id = await world.user()
    mine, other = await world.sign_in(), await world.sign_in()
    family = (await world.api_tokens.authenticate(mine.access_token)).claims.family_id
    world.clock.advance(1)
    await world.accounts.change_password(user_id, PASSWORD, NEW_PASSWORD, keep_token_family=family)
    assert not await world.works(mine) and not await world.works(other)
    assert await world.refreshes(other.refresh_token) is None
    assert await world.refreshes(mine.refresh_token) is not None
    with pytest.raises(InvalidCredentialsError):
        await world.sign_in()  # the old password
    assert await world.api_tokens.issue_pair("user1@example.com", NEW_PASSWORD)


async def test_password_change_from_a_browser_ends_every_token(world: TokenWorld) -> None:
    user_id = await world.user()
    pair = await world.sign_in()
    world.clock.advance(1)
    await world.accounts.change_password(user_id, PASSWORD, NEW_PASSWORD)
    assert not await world.works(pair)
    assert await world.refreshes(pair.refresh_token) is None


async def test_password_reset_ends_every_token(world: TokenWorld) -> None:
    await world.user()
    pair = await world.sign_in()
    await world.reset.request_password_reset("user1@example.com")
    await world.run_jobs()
    (mail,) = world.mails("user1@example.com", "reset")
    world.clock.advance(1)
    await world.reset.reset_password(token_in(mail), NEW_PASSWORD)
    assert not await world.works(pair)
    assert await world.refreshes(pair.refresh_token) is None


async def test_account_deletion_ends_every_token(world: TokenWorld) -> None:
    user_id = await world.user()
    pair = await world.sign_in()
    world.clock.advance(1)
    await world.accounts.delete_account(user_id, PASSWORD)
    assert not await world.works(pair)
    assert await world.refreshes(pair.refresh_token) is None
    async with world.uow(read_only=True) as tx:
        token = await tx.refresh_tokens.get(fingerprint(pair.refresh_token))
        reset_tokens = await tx.one_time_tokens.invalidate_for_user(
            user_id, TokenPurpose.PASSWORD_RESET, world.clock.now()
        )
    assert token is not None and token.revoked_at is not None
    assert reset_tokens == 0


async def test_a_sign_in_racing_a_password_change_cannot_outlive_it(world: TokenWorld) -> None:
    """The change locks the user; a sign-in checked against the old password before the
    change commits is refused, one after it needs the new password."""
    user_id = await world.user()
    hold = asyncio.Event()
    release = asyncio.Event()

    async def change() -> None:
        async with world.uow() as tx:
            await tx.users.lock(user_id)
            hold.set()
            await release.wait()
            current = await tx.users.get(user_id)
            assert current is not None
            await tx.users.update(current.copy(password_hash="$memory-changed$"))
            await tx.users.end_tokens_before(user_id, world.clock.now())
            await tx.commit()

    async def sign_in() -> TokenPair | None:
        await hold.wait()
        try:
            return await world.sign_in()
        except InvalidCredentialsError:
            return None

    changer = asyncio.create_task(change())
    signer = asyncio.create_task(sign_in())
    # Let the sign-in check the (old) password and queue for the user's lock.
    locks = world.store.database.users.user_locks
    async with asyncio.timeout(5):
        while not getattr(locks.get(user_id), "_waiters", None):
            await asyncio.sleep(0.001)
    release.set()
    await changer
    assert await signer is None


async def test_purging_expired_tokens_takes_refresh_tokens_too(world: TokenWorld) -> None:
    await world.user()
    old = await world.sign_in()
    world.clock.advance(REFRESH_TTL - 10)
    young = await world.sign_in()
    world.clock.advance(10)
    assert await world.maintenance.purge_expired_tokens() == 1
    async with world.uow(read_only=True) as tx:
        assert await tx.refresh_tokens.get(fingerprint(old.refresh_token)) is None
        assert await tx.refresh_tokens.get(fingerprint(young.refresh_token)) is not None


def test_the_policy_is_checked() -> None:
    for bad in (
        {"access_ttl_seconds": 0},
        {"refresh_ttl_seconds": -1},
        {"refresh_ttl_seconds": 60},
    ):
        with pytest.raises(ValueError):
            TokenPolicy(**bad)  # type: ignore[arg-type]

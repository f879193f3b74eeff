"""Operators' account changes (`UserAdministration`), every port in memory."""

from __future__ import annotations

import pytest

from adapters.memory.access_tokens import InMemoryAccessTokenCodec
from adapters.memory.oauth import FakeAccount
from core.audit.model import AuditOutcome
from core.identity.administration import UserAdministration, numbered, username_from_email
from core.identity.errors import (
    EmailTakenError,
    InvalidAccessTokenError,
    InvalidCredentialsError,
    InvalidEmailError,
    InvalidRefreshTokenError,
    InvalidTokenError,
    InvalidUsernameError,
    SelfDeactivationError,
    UsernameTakenError,
    UserNotFoundError,
    WeakPasswordError,
)
from core.identity.model import Email, Username
from core.identity.oauth_errors import OAuthFailedError
from core.identity.ports import AccessTokenCodec
from tests.unit.core.identity_world import PASSWORD, World, token_in
from tests.unit.core.test_oauth_service import OAuthWorld

ADMIN_PASSWORD = "a long admin passphrase 7"


class AdminWorld(World):
    def __init__(self) -> None:
        super().__init__(ports={AccessTokenCodec: InMemoryAccessTokenCodec()})
        self.admin = self.services.get(UserAdministration)

    async def user(self, name: str = "ada") -> int:
        user = await self.accounts.register(f"{name}@example.com", name, PASSWORD)
        assert user.id is not None
        return user.id

    async def bearer_works(self, access_token: str) -> bool:
        try:
            await self.api_tokens.authenticate(access_token)
        except InvalidAccessTokenError:
            return False
        return True


@pytest.fixture
def world() -> AdminWorld:
    return AdminWorld()


async def test_deactivating_ends_every_session_and_token_and_refuses_sign_ins(
    world: AdminWorld,
) -> None:
    ada = await world.user("ada")
    bob = await world.user("bob")
    sessions = [await world.auth.login("ada@example.com", PASSWORD) for _ in range(2)]
    bobs = await world.auth.login("bob@example.com", PASSWORD)
    pair = await world.api_tokens.issue_pair("ada@example.com", PASSWORD)
    assert await world.auth.authenticate(sessions[0].token) is not None  # cached now
    world.clock.advance(1)

    user = await world.admin.deactivate(ada, actor_id=bob, reason="chargeback fraud")

    assert user.deactivated_at == world.clock.now() and not user.is_active
    assert [await world.auth.authenticate(s.token) for s in sessions] == [None, None]
    assert await world.sessions.list_for_user(ada) == []
    assert not await world.bearer_works(pair.access_token)
    with pytest.raises(InvalidRefreshTokenError):
        await world.api_tokens.refresh(pair.refresh_token)
    with pytest.raises(InvalidCredentialsError):
        await world.auth.login("ada@example.com", PASSWORD)
    with pytest.raises(InvalidCredentialsError):
        await world.api_tokens.issue_pair("ada@example.com", PASSWORD)
    # Nobody else is touched.
    assert await world.auth.authenticate(bobs.token) is not None

    (entry,) = await world.audit(action="account.deactivated")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (bob, "user", str(ada))
    assert entry.details == {"reason": "chargeback fraud", "revoked": 1}
    refusals = await world.audit(action="auth.login", outcome="failure")
    assert [e.details.get("reason") for e in refusals] == ["deactivated"]


async def test_deactivating_twice_changes_and_audits_once(world: AdminWorld) -> None:
    ada = await world.user()
    first = await world.admin.deactivate(ada, actor_id=None)
    world.clock.advance(3600)
    again = await world.admin.deactivate(ada, actor_id=None, reason="again")
    assert again.deactivated_at == first.deactivated_at
    assert len(await world.audit(action="account.deactivated")) == 1


async def test_sessions_and_tokens_of_a_user_deactivated_elsewhere_are_refused(
    world: AdminWorld,
) -> None:
    # Another process (or a raw write) deactivated the user and never reached this
    # process's session store: the per-request read itself refuses the user.
    ada = await world.user()
    login = await world.auth.login("ada@example.com", PASSWORD)
    pair = await world.api_tokens.issue_pair("ada@example.com", PASSWORD)
    assert await world.auth.authenticate(login.token) is not None
    assert await world.bearer_works(pair.access_token)
    async with world.uow() as tx:
        user = await tx.users.get(ada)
        assert user is not None
        await tx.users.update(user.copy(deactivated_at=world.clock.now()))
        await tx.commit()
    assert await world.auth.authenticate(login.token) is None
    assert not await world.bearer_works(pair.access_token)
    with pytest.raises(InvalidRefreshTokenError):
        await world.api_tokens.refresh(pair.refresh_token)


async def test_operators_cannot_deactivate_themselves_or_unknown_accounts(
    world: AdminWorld,
) -> None:
    ada = await world.user()
    with pytest.raises(SelfDeactivationError):
        await world.admin.deactivate(ada, actor_id=ada)
    with pytest.raises(UserNotFoundError):
        await world.admin.deactivate(999, actor_id=None)
    await world.accounts.delete_account(ada, PASSWORD)
    with pytest.raises(UserNotFoundError):
        await world.admin.deactivate(ada, actor_id=None)
    assert await world.audit(action="account.deactivated") == []


async def test_reactivating_lets_the_user_sign_in_again_but_old_tokens_stay_dead(
    world: AdminWorld,
) -> None:
    ada = await world.user()
    pair = await world.api_tokens.issue_pair("ada@example.com", PASSWORD)
    world.clock.advance(1)
    await world.admin.deactivate(ada, actor_id=None)

    user = await world.admin.reactivate(ada, actor_id=7)

    assert user.is_active and user.deactivated_at is None
    assert await world.auth.login("ada@example.com", PASSWORD) is not None
    assert not await world.bearer_works(pair.access_token)
    with pytest.raises(InvalidRefreshTokenError):
        await world.api_tokens.refresh(pair.refresh_token)
    fresh = await world.api_tokens.issue_pair("ada@example.com", PASSWORD)
    assert await world.bearer_works(fresh.access_token)
    (entry,) = await world.audit(action="account.reactivated")
    assert (entry.actor_id, entry.target_id) == (7, str(ada))
    await world.admin.reactivate(ada, actor_id=7)  # active already: nothing to do
    assert len(await world.audit(action="account.reactivated")) == 1


async def test_verifying_an_email_marks_it_and_ends_outstanding_links(
    world: AdminWorld,
) -> None:
    ada = await world.user()
    await world.verification.request_email_verification(ada)
    await world.run_jobs()
    link = token_in(world.mails("ada@example.com", "Confirm")[-1])

    user = await world.admin.verify_email(ada, actor_id=3)

    assert user.email_verified
    assert (await world.accounts.get(ada)).email_verified
    with pytest.raises(InvalidTokenError):
        await world.verification.confirm_email(link)
    (entry,) = await world.audit(action="account.email_verified", outcome="success")
    assert (entry.actor_id, entry.target_id, entry.details) == (3, str(ada), {"by": "operator"})
    await world.admin.verify_email(ada, actor_id=3)
    assert len(await world.audit(action="account.email_verified", outcome="success")) == 1


async def test_ending_sessions_counts_them_and_ends_every_token(world: AdminWorld) -> None:
    ada = await world.user()
    logins = [await world.auth.login("ada@example.com", PASSWORD) for _ in range(3)]
    pair = await world.api_tokens.issue_pair("ada@example.com", PASSWORD)
    world.clock.advance(1)

    assert await world.admin.end_sessions(ada, actor_id=5) == 3

    assert [await world.auth.authenticate(s.token) for s in logins] == [None] * 3
    assert not await world.bearer_works(pair.access_token)
    # Not deactivated: the user signs in again.
    assert await world.auth.login("ada@example.com", PASSWORD) is not None
    (entry,) = await world.audit(action="account.sessions_ended")
    assert (entry.actor_id, entry.target_id) == (5, str(ada))
    assert entry.details == {"count": 3, "revoked": 1}
    assert await world.admin.end_sessions(ada, actor_id=5) == 1  # the new login
    with pytest.raises(UserNotFoundError):
        await world.admin.end_sessions(404, actor_id=5)


async def test_a_superuser_is_verified_and_signs_in(world: AdminWorld) -> None:
    user = await world.admin.create_superuser("Root@Example.com", ADMIN_PASSWORD)
    assert user.is_superuser and user.email_verified and user.is_active
    assert user.email == Email("root@example.com") and user.username == Username("root")
    assert user.password_hash != ADMIN_PASSWORD
    login = await world.auth.login("root@example.com", ADMIN_PASSWORD)
    assert login.user.id == user.id and login.user.is_superuser
    (entry,) = await world.audit(action="account.superuser_created")
    assert entry.actor_id is None and entry.target_id == str(user.id)
    assert world.pending_jobs() == []  # no welcome mail for an operator's account


async def test_superuser_usernames_are_made_unique_and_explicit_ones_checked(
    world: AdminWorld,
) -> None:
    await world.user("root")
    second = await world.admin.create_superuser("root@example.org", ADMIN_PASSWORD)
    third = await world.admin.create_superuser("root@example.net", ADMIN_PASSWORD)
    assert (second.username.value, third.username.value) == ("root-2", "root-3")
    named = await world.admin.create_superuser(
        "ops@example.com", ADMIN_PASSWORD, username="night.shift"
    )
    assert named.username == Username("night.shift")
    with pytest.raises(UsernameTakenError, match=r"night\.shift"):
        await world.admin.create_superuser("b@example.com", ADMIN_PASSWORD, username="night.shift")
    with pytest.raises(InvalidUsernameError):
        await world.admin.create_superuser("c@example.com", ADMIN_PASSWORD, username="x!")


async def test_an_existing_email_is_refused_never_promoted(world: AdminWorld) -> None:
    ada = await world.user()
    with pytest.raises(EmailTakenError, match=r"ada@example\.com"):
        await world.admin.create_superuser("ADA@example.com", ADMIN_PASSWORD)
    assert not (await world.accounts.get(ada)).is_superuser


@pytest.mark.parametrize(
    ("email", "password", "error"),
    [
        ("not-an-email", ADMIN_PASSWORD, InvalidEmailError),
        ("root@example.com", "short", WeakPasswordError),
        ("root@example.com", "password1234", WeakPasswordError),  # a common one
        ("admin@example.com", "admin@example.com", WeakPasswordError),
    ],
)
async def test_superusers_follow_the_registration_rules(
    world: AdminWorld, email: str, password: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await world.admin.create_superuser(email, password)
    assert await world.audit(action="account.superuser_created") == []


@pytest.mark.parametrize(
    ("email", "username"),
    [
        ("ada@example.com", "ada"),
        ("ada.l+ops@example.com", "ada.l-ops"),
        ("_x@example.com", "x-admin"),
        ("++@example.com", "admin"),
        (f"{'a' * 40}@example.com", "a" * 32),
    ],
)
def test_usernames_come_from_the_local_part(email: str, username: str) -> None:
    assert username_from_email(Email(email)) == Username(username)


def test_numbered_usernames_stay_valid() -> None:
    assert numbered(Username("a" * 32), 12).value == "a" * 29 + "-12"
    assert numbered(Username("ab." + "c" * 29), 100).value.endswith("-100")


async def test_oauth_refuses_a_deactivated_account_linked_or_by_email() -> None:
    world = OAuthWorld()
    admin = world.services.get(UserAdministration)
    ada = await world.registered("ada@example.com", "ada", verified=True)
    assert ada.id is not None
    await admin.deactivate(ada.id, actor_id=None)
    with pytest.raises(OAuthFailedError, match="deactivated"):
        await world.sign_in(FakeAccount(subject="1", email="ada@example.com", login="ada"))
    await admin.reactivate(ada.id, actor_id=None)
    linked = await world.sign_in(FakeAccount(subject="1", email="ada@example.com", login="ada"))
    assert linked.login.user.id == ada.id
    await admin.deactivate(ada.id, actor_id=None)
    with pytest.raises(OAuthFailedError, match="deactivated"):
        await world.sign_in(FakeAccount(subject="1", email="ada@example.com", login="ada"))
    refused = await world.audit(action="auth.login", outcome=AuditOutcome.FAILURE.value)
    assert [(e.details["method"], e.details["reason"]) for e in refused] == [
        ("oauth", "oauth_failed")
    ] * 2

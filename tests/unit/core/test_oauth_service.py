"""The OAuth sign-in rules, with every port in memory (no sockets, no sleeps)."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from adapters.memory.oauth import FakeAccount, InMemoryOAuthProvider
from adapters.system.tokens import SecretsTokenGenerator
from core.identity.errors import EmailTakenError, InvalidCredentialsError
from core.identity.model import Email, User, Username
from core.identity.oauth import OAuthLogin, OAuthProviders, pkce_challenge
from core.identity.oauth_errors import (
    OAuthAccountExistsError,
    OAuthEmailUnverifiedError,
    OAuthFailedError,
    OAuthProviderNotFoundError,
    OAuthStateError,
)
from core.identity.oauth_model import OAuthIdentity, OAuthStart, ProviderIdentity
from core.shared.context import ClientInfo
from core.shared.errors import UnavailableError
from core.shared.hashing import fingerprint
from core.shared.ids import TokenGenerator
from core.shared.query import ListQuery, PageRequest
from tests.unit.core.identity_world import PASSWORD, World

CLIENT = ClientInfo(ip="203.0.113.9", user_agent="pytest-browser")
ADA = FakeAccount(subject="4242", email="Ada@Example.com", name="Ada Lovelace", login="ada")


class SpyProvider(InMemoryOAuthProvider):
    """Records what the service hands the provider."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.exchanges: list[tuple[str, str]] = []

    async def exchange(self, *, code: str, code_verifier: str) -> ProviderIdentity:
        self.exchanges.append((code, code_verifier))
        return await super().exchange(code=code, code_verifier=code_verifier)


class OAuthWorld(World):
    def __init__(self) -> None:
        tokens = SecretsTokenGenerator()
        self.github = SpyProvider(
            "github",
            client_id="gh-client",
            redirect_uri="https://api.example.com/api/v1/auth/oauth/github/callback",
            authorize_url="https://github.example/login/oauth/authorize",
            tokens=tokens,
        )
        super().__init__(
            ports={TokenGenerator: tokens, OAuthProviders: OAuthProviders([self.github])}
        )

    async def sign_in(
        self, account: FakeAccount, *, previous_token: str | None = None
    ) -> OAuthLogin:
        start = self.oauth.begin("github")
        code = code_of(self.github.approve(start.url, account))
        return await self.oauth.complete(
            "github",
            code=code,
            state=start.state,
            expected_state=start.state,
            code_verifier=start.code_verifier,
            client=CLIENT,
            previous_token=previous_token,
        )

    async def registered(self, email: str, username: str, *, verified: bool) -> User:
        user = await self.accounts.register(email, username, PASSWORD)
        if verified:
            async with self.uow() as tx:
                user = await tx.users.update(user.copy(email_verified=True))
                await tx.commit()
        return user

    async def oauth_links(self, user_id: int) -> list[OAuthIdentity]:
        async with self.uow(read_only=True) as tx:
            return await tx.oauth_identities.list_for_user(user_id)

    async def user_count(self) -> int:
        async with self.uow(read_only=True) as tx:
            page = await tx.users.list(ListQuery(page=PageRequest(limit=100), include_deleted=True))
        return len(page.items)


def code_of(redirect: str) -> str:
    return parse_qs(urlsplit(redirect).query)["code"][0]


@pytest.fixture
def world() -> OAuthWorld:
    return OAuthWorld()


# --- begin ----------------------------------------------------------------------------


def test_begin_sends_a_fresh_state_and_an_s256_challenge(world: OAuthWorld) -> None:
    first, second = world.oauth.begin("github"), world.oauth.begin("github")
    query = {k: v[0] for k, v in parse_qs(urlsplit(first.url).query).items()}
    assert query["state"] == first.state
    assert query["code_challenge"] == pkce_challenge(first.code_verifier)
    assert query["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,128}", first.code_verifier)
    assert len(first.state) >= 43
    assert first.state != second.state and first.code_verifier != second.code_verifier
    assert first.code_verifier not in first.url  # only its challenge travels
    assert first.state not in repr(first) and first.code_verifier not in repr(first)


def test_pkce_challenge_matches_rfc_7636() -> None:
    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_unknown_and_unconfigured_providers_are_not_found(world: OAuthWorld) -> None:
    for name in ("google", "nope", ""):
        with pytest.raises(OAuthProviderNotFoundError):
            world.oauth.begin(name)


# --- new accounts ---------------------------------------------------------------------


async def test_a_verified_stranger_gets_a_new_verified_account(world: OAuthWorld) -> None:
    result = await world.sign_in(ADA)
    user = result.login.user
    assert result.created and result.linked
    assert user.email == Email("ada@example.com") and user.email_verified
    assert user.username == Username("ada")
    # A real hash of a password nobody knows: password logins fail like any wrong one.
    assert user.password_hash.startswith("$")
    with pytest.raises(InvalidCredentialsError):
        await world.auth.login("ada@example.com", PASSWORD)
    # The session is a real one.
    found = await world.auth.authenticate(result.login.token)
    assert found is not None and found.user.id == user.id
    assert [(x.provider, x.subject) for x in await world.oauth_links(user.id)] == [  # type: ignore[arg-type]
        ("github", "4242")
    ]
    # Welcomed like a registration.
    assert [job.payload["template"] for job in world.pending_jobs("notifications.send_email")] == [
        "welcome"
    ]


async def test_a_taken_username_gets_a_suffix(world: OAuthWorld) -> None:
    await world.registered("someone@example.com", "ada", verified=True)
    user = (await world.sign_in(ADA)).login.user
    assert re.fullmatch(r"ada-[A-Za-z0-9_-]{6}", str(user.username)), user.username


async def test_usernames_come_from_the_name_or_the_email_when_the_handle_is_unusable(
    world: OAuthWorld,
) -> None:
    bob = FakeAccount(subject="1", email="bob.smith@example.com", name="Bob Smith", login="!!")
    assert (await world.sign_in(bob)).login.user.username == Username("Bob-Smith")
    cy = FakeAccount(subject="2", email="cy@example.com")
    assert (await world.sign_in(cy)).login.user.username == Username("cy-user")


# --- linking ----------------------------------------------------------------------------


async def test_a_verified_email_links_to_the_verified_account(world: OAuthWorld) -> None:
    existing = await world.registered("ada@example.com", "ada_l", verified=True)
    result = await world.sign_in(ADA)
    assert not result.created and result.linked
    assert result.login.user.id == existing.id
    assert await world.user_count() == 1
    (linked,) = await world.audit(action="account.oauth_linked")
    assert linked.actor_id == existing.id and linked.details["provider"] == "github"


async def test_an_existing_link_signs_in_whatever_the_email_says_now(world: OAuthWorld) -> None:
    first = await world.sign_in(ADA)
    moved = FakeAccount(subject="4242", email="ada@new-job.example", email_verified=False)
    again = await world.sign_in(moved)
    assert not again.created and not again.linked
    assert again.login.user.id == first.login.user.id
    assert again.login.token != first.login.token
    assert len(await world.oauth_links(first.login.user.id)) == 1  # type: ignore[arg-type]


async def test_an_unverified_provider_email_never_reaches_an_existing_account(
    world: OAuthWorld,
) -> None:
    victim = await world.registered("ada@example.com", "ada_l", verified=True)
    impostor = FakeAccount(subject="666", email="ada@example.com", email_verified=False)
    with pytest.raises(OAuthEmailUnverifiedError):
        await world.sign_in(impostor)
    assert await world.oauth_links(victim.id) == []  # type: ignore[arg-type]
    assert await world.sessions.list_for_user(victim.id) == []  # type: ignore[arg-type]
    (refused,) = await world.audit(action="auth.login")
    assert refused.outcome == "failure"
    assert refused.details == {
        "reason": "oauth_email_unverified",
        "method": "oauth",
        "provider": "github",
    }


async def test_an_unverified_or_missing_email_creates_nothing_either(world: OAuthWorld) -> None:
    for account in (
        FakeAccount(subject="1", email="new@example.com", email_verified=False),
        FakeAccount(subject="2", email=None),
    ):
        with pytest.raises(OAuthEmailUnverifiedError):
            await world.sign_in(account)
    assert await world.user_count() == 0


async def test_an_account_with_an_unverified_email_is_not_linked(world: OAuthWorld) -> None:
    # Maybe registered by someone else in the owner's name (pre-account hijacking).
    squatted = await world.registered("ada@example.com", "ada_l", verified=False)
    with pytest.raises(OAuthAccountExistsError):
        await world.sign_in(ADA)
    assert await world.oauth_links(squatted.id) == []  # type: ignore[arg-type]
    assert await world.sessions.list_for_user(squatted.id) == []  # type: ignore[arg-type]


async def test_deleted_accounts_neither_sign_in_nor_free_their_email(world: OAuthWorld) -> None:
    linked = (await world.sign_in(ADA)).login.user
    async with world.uow() as tx:
        await tx.users.soft_delete(linked.id, world.clock.now())  # type: ignore[arg-type]
        await tx.commit()
    with pytest.raises(OAuthFailedError):
        await world.sign_in(ADA)
    other = FakeAccount(subject="999", email="ada@example.com")
    with pytest.raises(EmailTakenError):
        await world.sign_in(other)


# --- the flow's own checks -------------------------------------------------------------


@pytest.mark.parametrize("tamper", ["mismatch", "no_expected_state", "no_state", "no_verifier"])
async def test_a_bad_state_is_refused_before_the_provider_is_asked(
    world: OAuthWorld, tamper: str
) -> None:
    start = world.oauth.begin("github")
    code = code_of(world.github.approve(start.url, ADA))
    state, expected, verifier = start.state, start.state, start.code_verifier
    if tamper == "mismatch":
        state = world.oauth.begin("github").state
    elif tamper == "no_expected_state":
        expected = ""
    elif tamper == "no_state":
        state = ""
    else:
        verifier = ""
    with pytest.raises(OAuthStateError):
        await world.oauth.complete(
            "github",
            code=code,
            state=state,
            expected_state=expected,
            code_verifier=verifier,
            client=CLIENT,
        )
    assert world.github.exchanges == []
    assert await world.user_count() == 0
    (refused,) = await world.audit(action="auth.login")
    assert refused.details["reason"] == "state_mismatch"


async def test_the_verifier_from_begin_is_what_the_provider_gets(world: OAuthWorld) -> None:
    start = world.oauth.begin("github")
    code = code_of(world.github.approve(start.url, ADA))
    await world.oauth.complete(
        "github",
        code=code,
        state=start.state,
        expected_state=start.state,
        code_verifier=start.code_verifier,
    )
    assert world.github.exchanges == [(code, start.code_verifier)]


async def test_a_verifier_that_does_not_match_the_challenge_is_refused(
    world: OAuthWorld,
) -> None:
    start = world.oauth.begin("github")
    other: OAuthStart = world.oauth.begin("github")
    code = code_of(world.github.approve(start.url, ADA))
    with pytest.raises(OAuthFailedError):
        await world.oauth.complete(
            "github",
            code=code,
            state=start.state,
            expected_state=start.state,
            code_verifier=other.code_verifier,
        )
    assert await world.user_count() == 0
    (refused,) = await world.audit(action="auth.login")
    assert refused.details["reason"] == "provider_refused"


async def test_a_provider_outage_is_unavailable_and_changes_nothing(world: OAuthWorld) -> None:
    world.github.available = False
    with pytest.raises(UnavailableError):
        await world.sign_in(ADA)
    assert await world.user_count() == 0


async def test_the_login_ends_the_previous_session_and_is_audited(world: OAuthWorld) -> None:
    first = await world.sign_in(ADA)
    second = await world.sign_in(ADA, previous_token=first.login.token)
    assert await world.auth.authenticate(first.login.token) is None
    assert await world.auth.authenticate(second.login.token) is not None
    assert await world.sessions.get(fingerprint(first.login.token)) is None
    logins = await world.audit(action="auth.login")
    assert len(logins) == 2
    for entry in logins:
        assert entry.outcome == "success" and entry.ip == CLIENT.ip
        assert entry.details == {"method": "oauth", "provider": "github"}
    (registered,) = await world.audit(action="account.registered")
    assert registered.details == {"method": "oauth", "provider": "github"}


async def test_concurrent_first_sign_ins_make_one_account(world: OAuthWorld) -> None:
    results = await asyncio.gather(*(world.sign_in(ADA) for _ in range(4)))
    assert len({result.login.user.id for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert await world.user_count() == 1
    assert len(await world.oauth_links(results[0].login.user.id)) == 1  # type: ignore[arg-type]

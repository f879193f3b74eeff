"""The `OAuthProvider` contract on every adapter: the in-memory fake, and the GitHub and
Google HTTP adapters against the fake providers (in process through an httpx mock
transport; over real sockets too, marked integration)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adapters.memory.oauth import FakeAccount, InMemoryOAuthProvider
from adapters.oauth.client import ProviderConfig, new_http_client
from adapters.oauth.github import GitHubOAuthProvider
from adapters.oauth.google import GoogleOAuthProvider
from adapters.system.tokens import SecretsTokenGenerator
from core.identity.oauth import pkce_challenge
from core.identity.oauth_errors import OAuthFailedError
from core.identity.oauth_ports import OAuthProvider
from core.shared.errors import UnavailableError
from tests.oauth_fakes import (
    GITHUB_PATHS,
    GOOGLE_PATHS,
    FakeOAuthServer,
    Person,
    Registration,
    code_in,
    mock_transport,
    serve,
)

CALLBACK = "https://api.example.com/api/v1/auth/oauth/{}/callback"
VERIFIER = "v" * 20 + "-verifier-of-forty-three-chars-x"
OTHER_VERIFIER = "w" * 20 + "-verifier-of-forty-three-chars-x"
ADA = Person(subject="4242", email="ada@example.com", name="Ada Lovelace", login="ada")


@dataclass
class Harness:
    """One adapter, and the hands of a person at its provider."""

    provider: OAuthProvider
    approve: Callable[[str, Person], str]  # authorization URL, person -> code
    outage: Callable[[], None]


@asynccontextmanager
async def _memory() -> AsyncIterator[Harness]:
    fake = InMemoryOAuthProvider(
        "google",
        client_id="client-1",
        redirect_uri=CALLBACK.format("google"),
        authorize_url="https://accounts.example.com/auth",
        tokens=SecretsTokenGenerator(),
    )

    def approve(url: str, person: Person) -> str:
        account = FakeAccount(
            subject=person.subject,
            email=person.email,
            email_verified=person.email_verified,
            name=person.name,
            login=person.login,
        )
        return code_in(fake.approve(url, account))

    def outage() -> None:
        fake.available = False

    yield Harness(fake, approve, outage)


@asynccontextmanager
async def _http(name: str, *, sockets: bool) -> AsyncIterator[Harness]:
    registrations = {
        provider: Registration(
            f"{provider}-client", f"{provider}-secret", CALLBACK.format(provider)
        )
        for provider in ("github", "google")
    }
    server = FakeOAuthServer(**registrations)
    paths = GITHUB_PATHS if name == "github" else GOOGLE_PATHS
    with ExitStack() as stack:
        base: str
        if sockets:
            base = stack.enter_context(serve(server))
            http = new_http_client(2.0)
        else:
            base = "https://fake-provider.test"
            http = httpx.AsyncClient(transport=mock_transport(server), timeout=2.0)
        config = ProviderConfig(
            name=name,
            client_id=f"{name}-client",
            client_secret=f"{name}-secret",
            redirect_uri=CALLBACK.format(name),
            authorize_url=base + paths["authorize_url"],
            token_url=base + paths["token_url"],
            userinfo_url=base + paths["userinfo_url"],
            scope="openid email" if name == "google" else "read:user user:email",
            timeout_seconds=2.0,
        )
        provider: OAuthProvider
        if name == "github":
            provider = GitHubOAuthProvider(config, http, emails_url=base + paths["emails_url"])
        else:
            provider = GoogleOAuthProvider(config, http)

        def approve(url: str, person: Person) -> str:
            server.signed_in[name] = person
            return code_in(server.consent(url))

        def outage() -> None:
            server.mode = "error"

        try:
            yield Harness(provider, approve, outage)
        finally:
            await http.aclose()


HARNESSES: dict[str, Callable[[], AbstractAsyncContextManager[Harness]]] = {
    "memory": _memory,
    "github-http": lambda: _http("github", sockets=False),
    "google-http": lambda: _http("google", sockets=False),
    "github-sockets": lambda: _http("github", sockets=True),
    "google-sockets": lambda: _http("google", sockets=True),
}
PARAMS = [
    pytest.param(name, marks=pytest.mark.integration) if "sockets" in name else name
    for name in HARNESSES
]


@pytest.fixture(params=PARAMS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with HARNESSES[request.param]() as made:
        yield made


def start(harness: Harness, state: str = "state-1", verifier: str = VERIFIER) -> str:
    return harness.provider.authorization_url(state=state, code_challenge=pkce_challenge(verifier))


def test_the_authorization_url_carries_what_the_provider_needs(harness: Harness) -> None:
    url = start(harness)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert urlsplit(url).scheme in ("http", "https")
    assert query["response_type"] == "code"
    assert query["client_id"]
    assert query["redirect_uri"] == CALLBACK.format(harness.provider.name)
    assert query["scope"]
    assert query["state"] == "state-1"
    assert query["code_challenge"] == pkce_challenge(VERIFIER)
    assert query["code_challenge_method"] == "S256"


async def test_a_code_and_its_verifier_give_the_identity(harness: Harness) -> None:
    code = harness.approve(start(harness), ADA)
    identity = await harness.provider.exchange(code=code, code_verifier=VERIFIER)
    assert identity.provider == harness.provider.name
    assert identity.subject == "4242"
    assert identity.email == "ada@example.com" and identity.email_verified
    assert identity.display_name == "Ada Lovelace"


async def test_an_unverified_email_is_reported_as_such(harness: Harness) -> None:
    person = Person(subject="77", email="bob@example.com", email_verified=False)
    code = harness.approve(start(harness), person)
    identity = await harness.provider.exchange(code=code, code_verifier=VERIFIER)
    assert identity.subject == "77"
    assert not identity.email_verified


async def test_a_wrong_verifier_is_refused(harness: Harness) -> None:
    code = harness.approve(start(harness), ADA)
    with pytest.raises(OAuthFailedError):
        await harness.provider.exchange(code=code, code_verifier=OTHER_VERIFIER)


async def test_a_code_works_once(harness: Harness) -> None:
    code = harness.approve(start(harness), ADA)
    await harness.provider.exchange(code=code, code_verifier=VERIFIER)
    with pytest.raises(OAuthFailedError):
        await harness.provider.exchange(code=code, code_verifier=VERIFIER)


async def test_an_unknown_code_is_refused(harness: Harness) -> None:
    with pytest.raises(OAuthFailedError):
        await harness.provider.exchange(code="made-up-code", code_verifier=VERIFIER)


async def test_a_provider_that_is_down_is_unavailable(harness: Harness) -> None:
    code = harness.approve(start(harness), ADA)
    harness.outage()
    with pytest.raises(UnavailableError) as raised:
        await harness.provider.exchange(code=code, code_verifier=VERIFIER)
    assert raised.value.dependency == f"oauth:{harness.provider.name}"
    assert code not in raised.value.detail

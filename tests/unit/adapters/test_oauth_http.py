"""The GitHub and Google HTTP adapters against the fake providers, in process (httpx mock
transport: no sockets): what they send, and how each failure becomes a core error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from adapters.oauth.client import HttpOAuthProvider, ProviderConfig
from adapters.oauth.github import GitHubOAuthProvider, verified_email
from adapters.oauth.google import GoogleOAuthProvider
from core.identity.oauth import pkce_challenge
from core.identity.oauth_errors import OAuthFailedError
from core.shared.errors import UnavailableError
from tests.oauth_fakes import (
    GITHUB_PATHS,
    GOOGLE_PATHS,
    FakeOAuthServer,
    Person,
    Registration,
    code_in,
    mock_transport,
)

BASE = "https://fake-provider.test"
CALLBACK = "https://api.example.com/api/v1/auth/oauth/{}/callback"
VERIFIER = "a-verifier-that-is-long-enough-for-rfc-7636-xyz"
ADA = Person(subject="4242", email="ada@example.com", name="Ada Lovelace", login="ada")


def registration(name: str) -> Registration:
    return Registration(f"{name}-client", f"{name}-secret", CALLBACK.format(name))


@pytest.fixture
def server() -> FakeOAuthServer:
    return FakeOAuthServer(github=registration("github"), google=registration("google"))


@pytest.fixture
async def http(server: FakeOAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=mock_transport(server), timeout=1.0)
    yield client
    await client.aclose()


def config(name: str, **changes: object) -> ProviderConfig:
    paths = GITHUB_PATHS if name == "github" else GOOGLE_PATHS
    values: dict[str, object] = {
        "name": name,
        "client_id": f"{name}-client",
        "client_secret": f"{name}-secret",
        "redirect_uri": CALLBACK.format(name),
        "authorize_url": BASE + paths["authorize_url"],
        "token_url": BASE + paths["token_url"],
        "userinfo_url": BASE + paths["userinfo_url"],
        "scope": "scope-of-" + name,
        "timeout_seconds": 1.0,
    }
    values.update(changes)
    return ProviderConfig(**values)  # type: ignore[arg-type]


def provider(name: str, http: httpx.AsyncClient, **changes: object) -> HttpOAuthProvider:
    if name == "github":
        return GitHubOAuthProvider(
            config(name, **changes), http, emails_url=BASE + GITHUB_PATHS["emails_url"]
        )
    return GoogleOAuthProvider(config(name, **changes), http)


def approve(server: FakeOAuthServer, chosen: HttpOAuthProvider, person: Person = ADA) -> str:
    server.signed_in[chosen.name] = person
    url = chosen.authorization_url(state="s-1", code_challenge=pkce_challenge(VERIFIER))
    return code_in(server.consent(url))


NAMES = ["github", "google"]


@pytest.mark.parametrize("name", NAMES)
async def test_the_token_request_carries_the_pkce_verifier_and_the_client(
    name: str, server: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    chosen = provider(name, http)
    code = approve(server, chosen)
    await chosen.exchange(code=code, code_verifier=VERIFIER)
    (sent,) = server.token_requests
    assert sent == {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK.format(name),
        "client_id": f"{name}-client",
        "client_secret": f"{name}-secret",
        "code_verifier": VERIFIER,
    }


def test_the_authorization_url_keeps_a_configured_query(http: httpx.AsyncClient) -> None:
    chosen = GoogleOAuthProvider(
        config("google", authorize_url="https://id.example/auth?tenant=acme"), http
    )
    url = chosen.authorization_url(state="s", code_challenge="c")
    query = parse_qs(urlsplit(url).query)
    assert query["tenant"] == ["acme"] and query["state"] == ["s"]
    assert query["prompt"] == ["select_account"]
    assert query["scope"] == ["scope-of-google"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "change",
    [
        {"client_secret": "wrong-secret"},
        {"client_id": "someone-else"},
        {"redirect_uri": "https://evil.example/callback"},
    ],
)
async def test_a_refused_client_or_redirect_uri_is_a_failed_sign_in(
    name: str, change: dict[str, str], server: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    code = approve(server, provider(name, http))
    with pytest.raises(OAuthFailedError):
        await provider(name, http, **change).exchange(code=code, code_verifier=VERIFIER)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["error", "garbage", "connect", "slow"])
async def test_a_provider_in_trouble_is_unavailable_and_no_secret_leaks(
    name: str, mode: str, server: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    chosen = provider(name, http)
    code = approve(server, chosen)
    server.mode = mode
    with pytest.raises(UnavailableError) as raised:
        await chosen.exchange(code=code, code_verifier=VERIFIER)
    assert raised.value.dependency == f"oauth:{name}"
    message = str(raised.value)
    for secret in (code, VERIFIER, f"{name}-secret"):
        assert secret not in message


async def test_too_many_requests_is_unavailable(http: httpx.AsyncClient) -> None:
    limited = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(429, json={})), timeout=1.0
    )
    try:
        with pytest.raises(UnavailableError):
            await provider("google", limited).exchange(code="c", code_verifier=VERIFIER)
    finally:
        await limited.aclose()


async def test_a_provider_that_never_finishes_hits_the_deadline() -> None:
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()
        raise AssertionError("unreachable")

    hanging = httpx.AsyncClient(transport=httpx.MockTransport(hang))
    try:
        with pytest.raises(UnavailableError):
            await provider("github", hanging, timeout_seconds=0.01).exchange(
                code="c", code_verifier=VERIFIER
            )
    finally:
        await hanging.aclose()


async def test_github_vouches_only_for_addresses_it_lists_as_verified(
    server: FakeOAuthServer, http: httpx.AsyncClient
) -> None:
    chosen = provider("github", http)
    person = Person(subject="7", email="bob@example.com", email_verified=False, login="bob")
    identity = await chosen.exchange(code=approve(server, chosen, person), code_verifier=VERIFIER)
    # The public profile address is passed on, but as unverified.
    assert identity.email == "bob@example.com" and not identity.email_verified
    assert identity.login == "bob" and identity.subject == "7"


def test_github_prefers_the_primary_verified_address() -> None:
    assert (
        verified_email(
            [
                {"email": "a@example.com", "primary": False, "verified": True},
                {"email": "b@example.com", "primary": True, "verified": True},
            ]
        )
        == "b@example.com"
    )
    assert (
        verified_email(
            [
                {"email": "a@example.com", "primary": True, "verified": False},
                {"email": "c@example.com", "primary": False, "verified": True},
            ]
        )
        == "c@example.com"
    )
    assert verified_email([{"email": "a@example.com", "primary": True, "verified": "yes"}]) is None
    assert verified_email({"message": "not a list"}) is None


@pytest.mark.parametrize(
    ("answer", "failure"),
    [
        ({"sub": "", "email": "a@example.com"}, OAuthFailedError),
        ({"email": "a@example.com"}, OAuthFailedError),
        (["not", "an", "object"], OAuthFailedError),
        ({"sub": "x" * 256}, OAuthFailedError),
    ],
)
async def test_google_answers_without_a_usable_subject_fail(
    answer: object, failure: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == GOOGLE_PATHS["token_url"]:
            return httpx.Response(200, json={"access_token": "t"})
        return httpx.Response(200, json=answer)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(failure):
            await provider("google", client).exchange(code="c", code_verifier=VERIFIER)
    finally:
        await client.aclose()


async def test_google_email_verified_may_be_a_string() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == GOOGLE_PATHS["token_url"]:
            return httpx.Response(200, json={"access_token": "t"})
        return httpx.Response(
            200, json={"sub": "1", "email": "a@example.com", "email_verified": "true"}
        )

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    try:
        identity = await provider("google", client).exchange(code="c", code_verifier=VERIFIER)
    finally:
        await client.aclose()
    assert identity.email_verified


def test_the_config_never_shows_its_secret() -> None:
    assert "google-secret" not in repr(config("google"))

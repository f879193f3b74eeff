"""The whole OAuth sign-in through the app, against fake GitHub and Google servers on
127.0.0.1 (real sockets, real httpx client): the fakes check the client id and secret,
the redirect URI and the PKCE verifier against the S256 challenge, as the real ones do.

No external service is needed (the fakes are started here), so no `integration` mark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from entrypoints.bootstrap.settings import Settings
from entrypoints.http.app import create_app
from tests.oauth_fakes import (
    GITHUB_PATHS,
    GOOGLE_PATHS,
    FakeOAuthServer,
    Person,
    Registration,
    endpoint_settings,
    serve,
)
from tests.private_servers import free_port

APP = "http://testserver"
FRONTEND = "https://app.example.com"
SECRET_KEY = "oauth-integration-secret-key-0123456789abcdefghij"
PATHS = {"github": GITHUB_PATHS, "google": GOOGLE_PATHS}
ADA = Person(subject="4242", email="ada@example.com", name="Ada Lovelace", login="ada")


def registration(name: str) -> Registration:
    return Registration(
        f"{name}-client-id", f"{name}-client-secret", f"{APP}/api/v1/auth/oauth/{name}/callback"
    )


@pytest.fixture
def fake() -> Iterator[tuple[FakeOAuthServer, str]]:
    server = FakeOAuthServer(github=registration("github"), google=registration("google"))
    with serve(server) as base_url:
        yield server, base_url


MakeApp = Callable[..., TestClient]


@pytest.fixture
def make_app(tmp_path: Path, fake: tuple[FakeOAuthServer, str]) -> Iterator[MakeApp]:
    """An app on a SQLite file whose providers are the fakes; `oauth` overrides merge in."""
    _, base_url = fake
    with ExitStack() as stack:

        def make(provider_base: str = base_url, **oauth: Any) -> TestClient:
            providers = {
                name: {
                    "client_id": registration(name).client_id,
                    "client_secret": registration(name).client_secret,
                    **endpoint_settings(provider_base, PATHS[name]),
                }
                for name in PATHS
            }
            for name in PATHS:
                providers[name].update(oauth.pop(name, {}))
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                env="test",
                secret_key=SECRET_KEY,
                database={
                    "url": f"sqlite+aiosqlite:///{tmp_path / 'oauth.db'}",
                    "auto_create": True,
                },
                passwords={
                    "argon2_time_cost": 1,
                    "argon2_memory_kib": 1024,
                    "allow_weak_hashing": True,
                },
                email={"backend": "memory"},
                accounts={"frontend_url": FRONTEND},
                oauth={"backend": "http", "redirect_base_url": APP, **providers, **oauth},
            )
            return stack.enter_context(TestClient(create_app(settings), base_url=APP))

        yield make


def visit_provider(location: str) -> str:
    """The browser at the provider's consent page (a real HTTP request): where it is
    sent back to."""
    response = httpx.get(location, follow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == APP
    return f"{parts.path}?{parts.query}"


def sign_in(client: TestClient, provider: str) -> httpx.Response:
    started = client.get(f"/api/v1/auth/oauth/{provider}/authorize", follow_redirects=False)
    assert started.status_code == 302, started.text
    back = visit_provider(started.headers["location"])
    return client.get(path_of(back), follow_redirects=False)


@pytest.mark.parametrize("provider", ["github", "google"])
def test_the_full_sign_in_over_real_sockets(
    provider: str, make_app: MakeApp, fake: tuple[FakeOAuthServer, str]
) -> None:
    server, base_url = fake
    server.signed_in[provider] = ADA
    client = make_app()
    started = client.get(f"/api/v1/auth/oauth/{provider}/authorize", follow_redirects=False)
    assert started.headers["location"].startswith(base_url + PATHS[provider]["authorize_url"])
    back = visit_provider(started.headers["location"])
    finished = client.get(path_of(back), follow_redirects=False)
    assert finished.status_code == 302, finished.text
    assert finished.headers["location"] == f"{FRONTEND}/"

    # The session cookie works.
    me = client.get("/api/v1/users/me")
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com" and me.json()["email_verified"] is True

    # The provider got the verifier of the challenge it was shown, and our client.
    (token_request,) = server.token_requests
    assert token_request["client_id"] == f"{provider}-client-id"
    assert token_request["client_secret"] == f"{provider}-client-secret"
    assert token_request["redirect_uri"] == registration(provider).redirect_uri
    assert len(token_request["code_verifier"]) >= 43

    # Signing in with the other provider and the same verified email: the same account.
    other = "google" if provider == "github" else "github"
    server.signed_in[other] = Person(subject="77", email="ada@example.com")
    client.cookies.clear()
    assert sign_in(client, other).status_code == 302
    assert client.get("/api/v1/users/me").json()["id"] == me.json()["id"]


@pytest.mark.parametrize("provider", ["github", "google"])
def test_a_wrong_client_secret_is_a_failed_sign_in(
    provider: str, make_app: MakeApp, fake: tuple[FakeOAuthServer, str]
) -> None:
    server, _ = fake
    server.signed_in[provider] = ADA
    client = make_app(**{provider: {"client_secret": "not-the-secret"}})
    response = sign_in(client, provider)
    assert response.status_code == 400
    assert response.json()["code"] == "oauth_failed"
    assert client.get("/api/v1/users/me").status_code == 401


def test_a_provider_answering_503_is_a_503(
    make_app: MakeApp, fake: tuple[FakeOAuthServer, str]
) -> None:
    server, _ = fake
    server.signed_in["github"] = ADA
    client = make_app()
    started = client.get("/api/v1/auth/oauth/github/authorize", follow_redirects=False)
    back = visit_provider(started.headers["location"])
    server.mode = "error"
    response = client.get(path_of(back), follow_redirects=False)
    assert response.status_code == 503
    assert "retry-after" in response.headers


def test_a_slow_provider_times_out_as_a_503(
    make_app: MakeApp, fake: tuple[FakeOAuthServer, str]
) -> None:
    server, _ = fake
    server.signed_in["google"] = ADA
    client = make_app(timeout_seconds=0.2)
    started = client.get("/api/v1/auth/oauth/google/authorize", follow_redirects=False)
    back = visit_provider(started.headers["location"])
    server.mode, server.delay = "slow", 2.0
    began = time.monotonic()
    response = client.get(path_of(back), follow_redirects=False)
    assert response.status_code == 503
    assert time.monotonic() - began < 1.5  # the timeout, not the provider, decided


def test_an_unreachable_provider_is_a_503(
    make_app: MakeApp, fake: tuple[FakeOAuthServer, str]
) -> None:
    server, base_url = fake
    server.signed_in["github"] = ADA
    # A port nobody listens on (bound and released just now).
    closed = f"http://127.0.0.1:{free_port()}"
    client = make_app(github={"token_url": closed + GITHUB_PATHS["token_url"]})
    started = client.get("/api/v1/auth/oauth/github/authorize", follow_redirects=False)
    assert started.headers["location"].startswith(base_url)
    back = visit_provider(started.headers["location"])
    response = client.get(path_of(back), follow_redirects=False)
    assert response.status_code == 503

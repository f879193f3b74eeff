"""Signing in with GitHub or Google over HTTP, on every profile, with the in-process fake
providers (`oauth.backend=memory`): redirects, the state cookie, sessions, problems."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from adapters.memory.email import InMemoryEmailSender
from adapters.memory.oauth import FakeAccount, InMemoryOAuthProvider
from core.identity.oauth import pkce_challenge
from core.identity.oauth_model import OAuthStart
from core.identity.service import OAuthService
from core.shared.clock import Clock
from entrypoints.bootstrap.container import Container, build_container
from entrypoints.bootstrap.runtime import Runtime
from entrypoints.http.app import create_app
from entrypoints.http.oauth_cookie import OAuthStateCookies
from tests.unit.http.profiles import profile_settings
from tests.unit.http.support import Browser, ResponseChecker, new_credentials

FRONTEND = "https://app.example.com"
AUTHORIZE = "/api/v1/auth/oauth/{}/authorize"
CALLBACK = "/api/v1/auth/oauth/{}/callback"
SESSION = "/api/v1/auth/session"
_TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_-]+)")


@dataclass
class App:
    client: TestClient
    container: Container

    @property
    def runtime(self) -> Runtime:
        return self.client.app.state.runtime  # type: ignore[attr-defined,no-any-return]

    def provider(self, name: str) -> InMemoryOAuthProvider:
        found = self.runtime.get(OAuthService).providers.get(name)
        assert isinstance(found, InMemoryOAuthProvider)
        return found

    def browser(self) -> Browser:
        return Browser(self.client)

    def drain(self) -> None:
        assert self.client.portal is not None
        self.client.portal.call(self.runtime.drain_jobs)

    def sender(self) -> InMemoryEmailSender:
        sender = self.container.email_sender()
        assert isinstance(sender, InMemoryEmailSender)
        return sender


def oauth_settings(**changes: Any) -> dict[str, Any]:
    return {
        "backend": "memory",
        "redirect_base_url": "http://testserver",
        "success_path": "/welcome",
        "github": {"client_id": "gh-client"},
        "google": {"client_id": "g-client"},
        **changes,
    }


@contextmanager
def start_app(
    profile: str,
    request: pytest.FixtureRequest,
    directory: Path,
    base_url: str = "http://testserver",
    **overrides: Any,
) -> Iterator[App]:
    overrides.setdefault("oauth", oauth_settings())
    settings = profile_settings(
        profile,
        request,
        directory,
        accounts={"frontend_url": FRONTEND},
        **overrides,
    )
    container = build_container(settings)
    app = create_app(settings, container=container)
    with TestClient(app, base_url=base_url) as client:
        client.event_hooks = {"request": [], "response": [ResponseChecker(app)]}
        yield App(client, container)


MakeApp = Callable[..., App]


@pytest.fixture
def make_app(profile: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeApp]:
    """`make_app(**settings overrides)`: an app of this profile, started."""
    counter = itertools.count()
    with ExitStack() as stack:

        def make(**overrides: Any) -> App:
            directory = tmp_path / f"app{next(counter)}"
            directory.mkdir()
            return stack.enter_context(start_app(profile, request, directory, **overrides))

        yield make


@pytest.fixture
def app(make_app: MakeApp) -> App:
    return make_app()


ADA = FakeAccount(subject="4242", email="ada@example.com", name="Ada Lovelace", login="ada")


def authorize(browser: Browser, provider: str = "github") -> Any:
    response = browser.get(AUTHORIZE.format(provider), follow_redirects=False)
    assert response.status_code == 302, response.text
    return response


def back_from(redirect: str) -> str:
    """The callback path and query the provider redirected to."""
    parts = urlsplit(redirect)
    return f"{parts.path}?{parts.query}"


def sign_in(
    app: App, browser: Browser, account: FakeAccount = ADA, provider: str = "github"
) -> Any:
    location = authorize(browser, provider).headers["location"]
    callback = app.provider(provider).approve(location, account)
    return browser.get(back_from(callback), follow_redirects=False)


def cookie(browser: Browser, name: str) -> str | None:
    return next((c.value for c in browser.jar if c.name == name), None)


def set_cookies(response: Any) -> list[str]:
    return response.headers.get_list("set-cookie")


# --- authorize --------------------------------------------------------------------------


def test_authorize_redirects_to_the_provider_with_state_and_pkce(app: App) -> None:
    browser = app.browser()
    response = authorize(browser)
    target = urlsplit(response.headers["location"])
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        "https://github.com/login/oauth/authorize"
    )
    assert query["client_id"] == "gh-client"
    assert query["redirect_uri"] == "http://testserver/api/v1/auth/oauth/github/callback"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43
    assert response.headers["cache-control"] == "no-store"
    (state_cookie,) = set_cookies(response)
    assert state_cookie.startswith("portico_oauth=")
    for attribute in ("HttpOnly", "Max-Age=600", "Path=/", "SameSite=lax"):
        assert attribute in state_cookie
    # The cookie holds the verifier whose challenge went to the provider.
    value = cookie(browser, "portico_oauth")
    assert value is not None
    verifier = value.split(".")[4]
    assert pkce_challenge(verifier) == query["code_challenge"]
    assert verifier not in response.headers["location"]


@pytest.mark.parametrize("path", [AUTHORIZE, CALLBACK])
def test_unknown_or_unconfigured_providers_are_404(make_app: MakeApp, path: str) -> None:
    app = make_app(oauth=oauth_settings(google={}))
    browser = app.browser()
    for name in ("google", "gitlab"):
        response = browser.get(path.format(name) + "?code=c&state=s", follow_redirects=False)
        assert response.status_code == 404
        assert response.json()["code"] == "oauth_provider_not_found"


def test_authorize_ignores_credentials_it_does_not_need(app: App) -> None:
    browser = app.browser()
    response = browser.get(
        AUTHORIZE.format("google"),
        headers={"Authorization": "Bearer not-a-real-token"},
        follow_redirects=False,
    )
    assert response.status_code == 302


# --- a full sign-in ---------------------------------------------------------------------


def test_sign_in_creates_the_account_starts_a_session_and_lands_on_the_front_end(
    app: App,
) -> None:
    browser = app.browser()
    response = sign_in(app, browser)
    assert response.status_code == 302, response.text
    assert response.headers["location"] == f"{FRONTEND}/welcome"
    cookies = set_cookies(response)
    assert any(c.startswith("portico_session=") and "HttpOnly" in c for c in cookies)
    assert any(c.startswith("portico_oauth=") and "Max-Age=0" in c for c in cookies)
    assert cookie(browser, "portico_oauth") is None

    me = browser.me()
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com" and me.json()["email_verified"] is True
    assert me.json()["username"] == "ada"

    # The front end never saw a login answer: it reads its CSRF token here.
    session = browser.get(SESSION)
    assert session.status_code == 200
    assert session.json()["user"]["id"] == me.json()["id"]
    browser.csrf = session.json()["csrf_token"]
    renamed = browser.patch("/api/v1/users/me", json={"username": "ada_l"})
    assert renamed.status_code == 200 and renamed.json()["username"] == "ada_l"


def test_a_second_sign_in_reaches_the_same_account_with_a_new_session(app: App) -> None:
    first, second = app.browser(), app.browser()
    assert sign_in(app, first).status_code == 302
    old = first.session_cookie
    assert old is not None
    # Signing in again from the same browser: a new session id, and the old one ends.
    assert sign_in(app, first).status_code == 302
    assert first.session_cookie not in (None, old)
    assert sign_in(app, second).status_code == 302
    assert first.me().json()["id"] == second.me().json()["id"]
    replay = app.browser().get("/api/v1/users/me", headers={"Cookie": f"portico_session={old}"})
    assert replay.status_code == 401


def test_a_verified_account_is_linked_by_its_email(app: App) -> None:
    browser = app.browser()
    credentials = browser.signup(new_credentials())
    assert browser.post("/api/v1/auth/email/verify-request").status_code == 202
    app.drain()
    mails = app.sender().sent_to(credentials.email)
    token = next(t for m in mails if "confirm" in m.subject.lower() for t in _TOKEN.findall(m.text))
    confirmed = browser.post("/api/v1/auth/email/verify-confirm", json={"token": token})
    assert confirmed.status_code == 204
    account = FakeAccount(subject="77", email=credentials.email.upper())
    other = app.browser()
    assert sign_in(app, other, account, "google").status_code == 302
    assert other.me().json()["id"] == browser.me().json()["id"]


def test_an_unverified_provider_email_is_409_and_signs_nobody_in(app: App) -> None:
    owner = app.browser()
    credentials = owner.signup(new_credentials())
    impostor = app.browser()
    account = FakeAccount(subject="666", email=credentials.email, email_verified=False)
    response = sign_in(app, impostor, account)
    assert response.status_code == 409
    assert response.json()["code"] == "oauth_email_unverified"
    assert impostor.session_cookie is None
    assert cookie(impostor, "portico_oauth") is None
    assert impostor.me().status_code == 401


def test_an_unverified_local_account_is_not_linked(app: App) -> None:
    owner = app.browser()
    credentials = owner.signup(new_credentials())  # email not verified
    response = sign_in(app, app.browser(), FakeAccount(subject="9", email=credentials.email))
    assert response.status_code == 409
    assert response.json()["code"] == "account_exists"


# --- the state check ------------------------------------------------------------------------


def started(app: App, browser: Browser, provider: str = "github") -> tuple[str, str]:
    """(callback path with a valid code and the right state, the state)."""
    location = authorize(browser, provider).headers["location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    return back_from(app.provider(provider).approve(location, ADA)), state


def assert_state_refused(response: Any) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "oauth_state_invalid"
    assert any(c.startswith("portico_oauth=") and "Max-Age=0" in c for c in set_cookies(response))
    assert not any(c.startswith("portico_session=") for c in set_cookies(response))


def test_a_callback_without_the_state_cookie_is_refused(app: App) -> None:
    callback, _ = started(app, app.browser())
    # Another browser (an attacker's link, say) has no state cookie.
    assert_state_refused(app.browser().get(callback, follow_redirects=False))


def test_a_callback_with_another_state_is_refused(app: App) -> None:
    browser = app.browser()
    callback, state = started(app, browser)
    forged = callback.replace(f"state={state}", "state=" + "x" * 43)
    assert_state_refused(browser.get(forged, follow_redirects=False))
    # The attempt is over: the cookie went with the refusal.
    assert_state_refused(browser.get(callback, follow_redirects=False))


def test_a_state_cookie_from_another_provider_is_refused(app: App) -> None:
    browser = app.browser()
    callback, _ = started(app, browser, "github")
    assert_state_refused(
        browser.get(callback.replace("/github/", "/google/"), follow_redirects=False)
    )


def resealed(app: App, browser: Browser, state: str, tamper: str) -> str:
    """The browser's state cookie rebuilt from its own claims (provider, state, verifier)
    the way the app seals it, with the app's secret, max age and clock, but for `tamper`.
    `"none"` changes nothing: the control that the rebuilding itself is sound."""
    settings = app.client.app.state.settings  # type: ignore[attr-defined]
    value = cookie(browser, "portico_oauth")
    assert value is not None
    verifier = value.split(".")[4]
    start = OAuthStart(provider="github", url="", state=state, code_verifier=verifier)
    max_age = settings.oauth.state_max_age_seconds
    now = app.runtime.get(Clock).now()
    if tamper == "none":
        return OAuthStateCookies(settings.secret(), max_age_seconds=max_age).seal(start, now)
    if tamper == "expired":
        issued = now - timedelta(seconds=max_age + 1)
        return OAuthStateCookies(settings.secret(), max_age_seconds=max_age).seal(start, issued)
    if tamper == "forged":
        forger = OAuthStateCookies("another-secret-key-" * 3, max_age_seconds=max_age)
        return forger.seal(start, now)
    assert tamper == "garbage"
    return "v1.not.a.cookie"


def replace_cookie(browser: Browser, name: str, value: str) -> None:
    replaced = [c for c in browser.jar if c.name == name]
    assert len(replaced) == 1
    replaced[0].value = value


@pytest.mark.parametrize("tamper", ["expired", "forged", "garbage"])
def test_expired_forged_or_malformed_state_cookies_are_refused(app: App, tamper: str) -> None:
    browser = app.browser()
    callback, state = started(app, browser)
    replace_cookie(browser, "portico_oauth", resealed(app, browser, state, tamper))
    assert_state_refused(browser.get(callback, follow_redirects=False))


def test_a_state_cookie_resealed_without_a_defect_is_accepted(app: App) -> None:
    """Control for the test above: its rebuilt cookie signs in when nothing is wrong."""
    browser = app.browser()
    callback, state = started(app, browser)
    replace_cookie(browser, "portico_oauth", resealed(app, browser, state, "none"))
    response = browser.get(callback, follow_redirects=False)
    assert response.status_code == 302, response.text
    assert response.headers["location"] == f"{FRONTEND}/welcome"
    assert browser.me().json()["email"] == ADA.email


def test_a_declined_consent_is_400_and_ends_the_attempt(app: App) -> None:
    browser = app.browser()
    location = authorize(browser).headers["location"]
    response = browser.get(back_from(app.provider("github").deny(location)), follow_redirects=False)
    assert response.status_code == 400
    assert response.json()["code"] == "oauth_denied"
    assert cookie(browser, "portico_oauth") is None


def test_a_refused_code_is_400(app: App) -> None:
    browser = app.browser()
    callback, _ = started(app, browser)
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    made_up = f"{parts.path}?code=made-up-code&state={query['state'][0]}"
    response = browser.get(made_up, follow_redirects=False)
    assert response.status_code == 400
    assert response.json()["code"] == "oauth_failed"


def test_a_provider_outage_is_503_with_retry_after(app: App) -> None:
    browser = app.browser()
    callback, _ = started(app, browser)
    app.provider("github").available = False
    response = browser.get(callback, follow_redirects=False)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] == "service_unavailable"


def test_an_oversized_code_is_422(app: App) -> None:
    response = app.browser().get(CALLBACK.format("github") + "?code=" + "c" * 3000 + "&state=s")
    assert response.status_code == 422


# --- cookies and the session endpoint -------------------------------------------------------


def test_secure_cookies_are_host_prefixed(make_app: MakeApp) -> None:
    app = make_app(
        base_url="https://testserver",
        sessions={"cookie_secure": True},
        oauth=oauth_settings(redirect_base_url="https://testserver"),
    )
    browser = app.browser()
    response = authorize(browser)
    (state_cookie,) = set_cookies(response)
    assert state_cookie.startswith("__Host-portico_oauth=") and "Secure" in state_cookie
    location = response.headers["location"]
    finished = browser.get(
        back_from(app.provider("github").approve(location, ADA)), follow_redirects=False
    )
    assert finished.status_code == 302
    assert browser.me().status_code == 200


def test_the_session_endpoint_needs_a_session(app: App) -> None:
    anonymous = app.browser().get(SESSION)
    assert anonymous.status_code == 401
    browser = app.browser()
    credentials = browser.signup(new_credentials())
    tokens = app.client.post(
        "/api/v1/auth/token",
        json={"email": credentials.email, "password": credentials.password},
    ).json()
    bearer = app.client.get(SESSION, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert bearer.status_code == 404
    assert bearer.json()["code"] == "session_not_found"

"""CSRF: synchronizer token + Origin check on cookie-authenticated unsafe requests, and the
pre-session double-submit token on login and registration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from entrypoints.http.cookies import PreSessionTokens
from tests.unit.http.conftest import MakeClient
from tests.unit.http.support import Browser, new_credentials

RENAME = "/api/v1/users/me"
LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/users"


def _rename(browser: Browser, **kwargs: object) -> object:
    return browser.patch(RENAME, json={"username": new_credentials().username}, **kwargs)


def _assert_csrf_failed(response: object) -> None:
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert response.json()["code"] == "csrf_failed"  # type: ignore[attr-defined]


def test_missing_token_is_403_and_changes_nothing(browser: Browser) -> None:
    browser.signup()
    before = browser.me().json()
    _assert_csrf_failed(_rename(browser, csrf=False))
    assert browser.me().json() == before


def test_wrong_token_is_403(browser: Browser) -> None:
    browser.signup()
    before = browser.me().json()
    _assert_csrf_failed(_rename(browser, headers={"X-CSRF-Token": "x" * 43}))
    _assert_csrf_failed(_rename(browser, headers={"X-CSRF-Token": ""}))
    assert browser.me().json() == before


def test_another_sessions_token_is_403(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    credentials = browser.signup()
    same_user_elsewhere = new_browser()
    same_user_elsewhere.login_as(credentials)
    stranger = new_browser()
    stranger.signup()
    before = browser.me().json()
    for token in (same_user_elsewhere.csrf, stranger.csrf):
        assert token and token != browser.csrf
        _assert_csrf_failed(_rename(browser, headers={"X-CSRF-Token": token}))
    assert browser.me().json() == before
    # Control: the same request with this session's own token passes, and the other
    # tokens are live (they pass in their own sessions).
    assert _rename(browser, headers={"X-CSRF-Token": browser.csrf}).status_code == 200
    assert _rename(same_user_elsewhere).status_code == 200
    assert _rename(stranger).status_code == 200


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://testserver.evil.example", "null", "http://testserver:8080"],
)
def test_hostile_origin_is_403_even_with_the_right_token(browser: Browser, origin: str) -> None:
    browser.signup()
    before = browser.me().json()
    _assert_csrf_failed(_rename(browser, headers={"Origin": origin}))
    assert browser.me().json() == before
    # logout with a hostile origin does not end the session either
    _assert_csrf_failed(browser.post("/api/v1/auth/logout", headers={"Origin": origin}))
    assert browser.me().status_code == 200


def test_same_origin_passes(browser: Browser) -> None:
    browser.signup()
    assert _rename(browser, headers={"Origin": "http://testserver"}).status_code == 200
    assert _rename(browser, headers={"Origin": "http://TESTSERVER:80"}).status_code == 200


def test_cross_site_fetch_without_origin_is_403(browser: Browser) -> None:
    browser.signup()
    _assert_csrf_failed(_rename(browser, headers={"Sec-Fetch-Site": "cross-site"}))
    assert _rename(browser, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_trusted_origins_pass(make_client: MakeClient) -> None:
    client = make_client(http={"trusted_origins": ["https://app.example.com"]})
    browser = Browser(client)
    browser.signup()
    assert _rename(browser, headers={"Origin": "https://app.example.com"}).status_code == 200
    _assert_csrf_failed(_rename(browser, headers={"Origin": "https://other.example.com"}))


def test_every_unsafe_session_route_needs_the_token(browser: Browser) -> None:
    credentials = browser.signup()
    for method, path, body in [
        ("POST", "/api/v1/auth/logout", None),
        ("POST", "/api/v1/auth/logout-all", {}),
        ("DELETE", "/api/v1/auth/sessions/1", None),
        ("PATCH", "/api/v1/users/me", {"username": "whatever_name"}),
        ("DELETE", "/api/v1/users/me", {"password": credentials.password}),
        (
            "POST",
            "/api/v1/auth/password/change",
            {"current_password": credentials.password, "new_password": "Another-long-pass-99"},
        ),
    ]:
        _assert_csrf_failed(browser.request(method, path, json=body, csrf=False))
    assert browser.me().status_code == 200
    assert browser.login(credentials.email, credentials.password).status_code == 200


def test_safe_methods_need_no_token(browser: Browser) -> None:
    browser.signup()
    assert (
        browser.get("/api/v1/auth/sessions", headers={"Origin": "https://evil.example"}).status_code
        == 200
    )


# --- pre-session token (login and registration) -----------------------------------------


def test_login_without_a_pre_session_token_is_403(browser: Browser, client: TestClient) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    fresh = Browser(client)
    response = fresh.post(
        "/api/v1/auth/login", json={"email": credentials.email, "password": credentials.password}
    )
    _assert_csrf_failed(response)
    assert "set-cookie" not in response.headers


def test_login_with_header_but_no_cookie_is_403(browser: Browser, client: TestClient) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    token = Browser(client).pre_session_token()  # another browser's token: not our cookie
    fresh = Browser(client)
    _assert_csrf_failed(
        fresh.post(
            "/api/v1/auth/login",
            json={"email": credentials.email, "password": credentials.password},
            headers={"X-CSRF-Token": token},
        )
    )


def test_login_with_a_mismatched_header_is_403(browser: Browser) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    browser.pre_session_token()  # sets the cookie
    other_token = PreSessionTokens("x" * 64).issue(datetime.now(UTC))
    _assert_csrf_failed(
        browser.post(
            "/api/v1/auth/login",
            json={"email": credentials.email, "password": credentials.password},
            headers={"X-CSRF-Token": other_token},
        )
    )


def test_login_with_another_validly_signed_token_than_the_cookie_is_403(
    browser: Browser, client: TestClient
) -> None:
    """Both tokens carry our signature and are fresh: only header == cookie is missing."""
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    own = browser.pre_session_token()  # sets this browser's cookie
    other = Browser(client).pre_session_token()  # issued by the same server, to another
    assert other != own
    login = {"email": credentials.email, "password": credentials.password}
    newcomer = new_credentials().as_json()
    _assert_csrf_failed(browser.post(LOGIN, json=login, headers={"X-CSRF-Token": other}))
    _assert_csrf_failed(browser.post(REGISTER, json=newcomer, headers={"X-CSRF-Token": other}))
    assert browser.session_cookie is None
    # Control: the same requests with the cookie's own token are accepted.
    assert browser.post(REGISTER, json=newcomer, headers={"X-CSRF-Token": own}).status_code == 201
    assert browser.post(LOGIN, json=login, headers={"X-CSRF-Token": own}).status_code == 200
    assert browser.session_cookie is not None


def test_a_forged_pre_session_token_is_403(browser: Browser, client: TestClient) -> None:
    """Header == cookie is not enough: the token must carry our signature."""
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    forged = PreSessionTokens("not-the-server-secret" * 3).issue(datetime.now(UTC))
    fresh = Browser(client)
    response = fresh.post(
        "/api/v1/auth/login",
        json={"email": credentials.email, "password": credentials.password},
        headers={"X-CSRF-Token": forged, "Cookie": f"portico_csrf={forged}"},
    )
    _assert_csrf_failed(response)


def test_login_with_a_hostile_origin_is_403(browser: Browser) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    token = browser.pre_session_token()
    response = browser.post(
        "/api/v1/auth/login",
        json={"email": credentials.email, "password": credentials.password},
        headers={"X-CSRF-Token": token, "Origin": "https://evil.example"},
    )
    _assert_csrf_failed(response)
    assert browser.session_cookie is None


def test_registration_without_a_pre_session_token_is_403_and_creates_nothing(
    browser: Browser, client: TestClient
) -> None:
    credentials = new_credentials()
    fresh = Browser(client)
    _assert_csrf_failed(fresh.post("/api/v1/users", json=credentials.as_json()))
    assert browser.register(credentials).status_code == 201  # the email was still free


def test_pre_session_token_endpoint(client: TestClient) -> None:
    response = client.get("/api/v1/auth/csrf")
    assert response.status_code == 200
    token = response.json()["csrf_token"]
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"portico_csrf={token};")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert client.get("/api/v1/auth/csrf").json()["csrf_token"] != token


def test_pre_session_tokens_expire_and_are_bound_to_the_secret() -> None:
    tokens = PreSessionTokens("secret-one" * 5, max_age_seconds=3600)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token = tokens.issue(now)
    assert tokens.verify(token, now)
    assert tokens.verify(token, now + timedelta(seconds=3599))
    assert not tokens.verify(token, now + timedelta(seconds=3601))
    assert not tokens.verify(token, now - timedelta(minutes=5))  # from the future
    assert not PreSessionTokens("secret-two" * 5).verify(token, now)
    issued, nonce, signature = token.split(".")
    assert not tokens.verify(f"{int(issued) + 1000}.{nonce}.{signature}", now)  # extended
    assert not tokens.verify(f"{issued}.{nonce}x.{signature}", now)
    for junk in ("", "a.b", "a.b.c", "1.2.3.4", "x" * 300, None):
        assert not tokens.verify(junk, now)

"""RELIABILITY.md "Sessions and authentication", through HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from tests.unit.http.conftest import MakeClient
from tests.unit.http.support import Browser, new_credentials


def _with_cookie(client: TestClient, name: str, value: str) -> Browser:
    """A fresh browser that presents exactly this session cookie."""
    browser = Browser(client)
    browser.client.cookies = browser.jar  # type: ignore[assignment]
    browser.jar.set_cookie(_cookie(name, value))
    return browser


def _cookie(name: str, value: str):  # type: ignore[no-untyped-def]
    from http.cookiejar import Cookie

    return Cookie(
        0,
        name,
        value,
        None,
        False,
        "testserver.local",
        False,
        False,
        "/",
        True,
        False,
        None,
        False,
        None,
        None,
        {},
    )


def _me_with_raw_cookie(client: TestClient, header: str) -> object:
    fresh = Browser(client)
    return fresh.get("/api/v1/users/me", headers={"Cookie": header})


def test_session_id_changes_at_login_and_the_old_one_is_dead(
    browser: Browser, client: TestClient
) -> None:
    credentials = browser.signup()
    first = browser.session_cookie
    assert first is not None

    browser.login_as(credentials)  # presents the first cookie with the login
    second = browser.session_cookie
    assert second is not None and second != first

    name = browser.cookie_name
    assert _me_with_raw_cookie(client, f"{name}={first}").status_code == 401
    assert _me_with_raw_cookie(client, f"{name}={second}").status_code == 200
    assert len(browser.get("/api/v1/auth/sessions").json()["items"]) == 1


def test_a_planted_pre_login_id_is_not_adopted(browser: Browser, client: TestClient) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    planted = "A" * 43  # attacker-chosen, well-formed
    victim = Browser(client)
    victim.client.cookies = victim.jar  # type: ignore[assignment]
    victim.jar.set_cookie(_cookie(victim.cookie_name, planted))
    victim.login_as(credentials)
    assert victim.session_cookie != planted
    assert _me_with_raw_cookie(client, f"{victim.cookie_name}={planted}").status_code == 401


def test_replayed_cookie_after_logout_is_401(browser: Browser, client: TestClient) -> None:
    browser.signup()
    token = browser.session_cookie
    response = browser.post("/api/v1/auth/logout")
    assert response.status_code == 204
    cleared = response.headers["set-cookie"]
    assert cleared.startswith(f"{browser.cookie_name}=") and "Max-Age=0" in cleared
    assert _me_with_raw_cookie(client, f"{browser.cookie_name}={token}").status_code == 401


def test_logout_all_ends_every_session(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    credentials = browser.signup()
    others = [new_browser() for _ in range(2)]
    for other in others:
        other.login_as(credentials)

    assert browser.post("/api/v1/auth/logout-all").status_code == 204  # no body at all
    assert browser.me().status_code == 401
    assert [o.me().status_code for o in others] == [401, 401]


def test_logout_all_keep_current(browser: Browser, new_browser: Callable[[], Browser]) -> None:
    credentials = browser.signup()
    other = new_browser()
    other.login_as(credentials)

    response = browser.post("/api/v1/auth/logout-all", json={"keep_current": True})
    assert response.status_code == 204
    assert "set-cookie" not in response.headers
    assert browser.me().status_code == 200
    assert other.me().status_code == 401
    assert len(browser.get("/api/v1/auth/sessions").json()["items"]) == 1


def test_logout_all_does_not_touch_other_users(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    browser.signup()
    bystander = new_browser()
    bystander.signup()
    assert browser.post("/api/v1/auth/logout-all", json={}).status_code == 204
    assert bystander.me().status_code == 200


def test_password_change_ends_other_sessions_and_keeps_this_one(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    credentials = browser.signup()
    other = new_browser()
    other.login_as(credentials)
    new_password = "A-brand-new-passphrase-42"

    response = browser.post(
        "/api/v1/auth/password/change",
        json={"current_password": credentials.password, "new_password": new_password},
    )
    assert response.status_code == 204
    assert browser.me().status_code == 200
    assert other.me().status_code == 401
    assert other.login(credentials.email, credentials.password).status_code == 401
    assert other.login(credentials.email, new_password).status_code == 200


def test_password_change_with_the_wrong_current_password(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    credentials = browser.signup()
    other = new_browser()
    other.login_as(credentials)
    response = browser.post(
        "/api/v1/auth/password/change",
        json={"current_password": "definitely-not-it", "new_password": "A-brand-new-passphrase-42"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_password"
    assert "www-authenticate" not in response.headers  # refused, not signed out
    assert other.me().status_code == 200  # nothing ended
    assert other.login(credentials.email, credentials.password).status_code == 200


def test_password_change_to_a_weak_password_names_new_password(browser: Browser) -> None:
    credentials = browser.signup()
    response = browser.post(
        "/api/v1/auth/password/change",
        json={"current_password": credentials.password, "new_password": "short"},
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "weak_password"
    assert problem["errors"][0]["loc"] == ["body", "new_password"]
    assert browser.login(credentials.email, credentials.password).status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "",
        "x" * 10_000,
        "A" * 257,
        "../../etc/passwd",
        "%00%00%00%00%00%00%00%00%00",
        "not base64 !!!!!!!!!!!!!!!!!!!!!",
        "A" * 43,  # well-formed but unknown
        "\u00e9" * 40,
    ],
)
def test_bad_session_cookies_are_anonymous_and_create_nothing(
    client: TestClient, value: str
) -> None:
    name = client.app.state.settings.session_cookie_name  # type: ignore[attr-defined]
    header = (f'{name}="{value}"' if " " in value else f"{name}={value}").encode("utf-8")
    fresh = Browser(client)
    response = fresh.get("/api/v1/users/me", headers={"Cookie": header})  # type: ignore[dict-item]
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "set-cookie" not in response.headers
    # an unsafe request with it is not treated as a session either (401, not 403 csrf)
    response = fresh.post("/api/v1/auth/logout", headers={"Cookie": header})  # type: ignore[dict-item]
    assert response.status_code == 401


def test_a_bad_cookie_does_not_get_in_the_way_of_login(client: TestClient) -> None:
    credentials = new_credentials()
    browser = Browser(client)
    assert browser.register(credentials).status_code == 201
    browser.jar.set_cookie(_cookie(browser.cookie_name, "x" * 5000))
    assert browser.login(credentials.email, credentials.password).status_code == 200
    assert browser.me().status_code == 200


def test_cookie_attributes_in_development(browser: Browser) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    response = browser.login(credentials.email, credentials.password)
    (cookie,) = [
        c for c in response.headers.get_list("set-cookie") if c.startswith("portico_session=")
    ]
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert not any(a.startswith("domain") for a in attributes)
    assert "secure" not in attributes
    assert "max-age=43200" in attributes  # the absolute lifetime
    token = cookie.split(";", 1)[0].split("=", 1)[1]
    assert len(token) >= 43  # 256 bits, URL-safe base64


def test_cookie_attributes_when_secure(make_client: MakeClient) -> None:
    client = make_client(base_url="https://testserver", sessions={"cookie_secure": True})
    browser = Browser(client)
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    response = browser.login(credentials.email, credentials.password)
    assert response.status_code == 200
    cookies = response.headers.get_list("set-cookie")
    (cookie,) = [c for c in cookies if c.startswith("__Host-portico_session=")]
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= set(attributes)
    assert not any(a.startswith("domain") for a in attributes)
    assert browser.me().status_code == 200  # the prefixed cookie is the one read
    # the pre-session CSRF cookie follows the same rules
    csrf_cookie = browser.get("/api/v1/auth/csrf").headers["set-cookie"]
    assert csrf_cookie.startswith("__Host-portico_csrf=")
    assert "secure" in csrf_cookie.lower()
    # logout clears the prefixed cookie with matching attributes
    cleared = browser.post("/api/v1/auth/logout").headers["set-cookie"]
    assert cleared.startswith("__Host-portico_session=") and "secure" in cleared.lower()


def test_unknown_email_and_wrong_password_get_the_same_answer(browser: Browser) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    wrong_password = browser.login(credentials.email, "wrong-password-1234")
    unknown_email = browser.login(new_credentials().email, "wrong-password-1234")
    malformed_email = browser.login("not an email", "wrong-password-1234")
    assert (
        wrong_password.status_code
        == unknown_email.status_code
        == malformed_email.status_code
        == 401
    )
    assert wrong_password.json() == unknown_email.json() == malformed_email.json()
    assert wrong_password.json()["code"] == "invalid_credentials"
    assert "set-cookie" not in wrong_password.headers


def test_failed_login_keeps_an_existing_session(browser: Browser) -> None:
    credentials = browser.signup()
    assert browser.login(credentials.email, "wrong-password-1234").status_code == 401
    assert browser.me().status_code == 200

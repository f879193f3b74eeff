"""Bearer tokens over HTTP (mobile and API clients), on every profile: sign-in, refresh
rotation and reuse detection, revocation, CSRF rules, "end every token". (The JWT attack
matrix is in `test_jwt_attacks.py`.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

from tests.unit.http.bearer_support import (
    ME,
    REFRESH,
    REVOKE,
    TOKEN,
    MobileApp,
    Signed,
    assert_invalid_token,
    new_app,
    sign_in_twice,
)
from tests.unit.http.support import Browser, Credentials, new_credentials


@pytest.fixture
def signed(client: TestClient) -> Signed:
    return sign_in_twice(client)


# --- sign-in, refresh, revoke --------------------------------------------------------------


def test_token_round_trip(client: TestClient) -> None:
    credentials = Browser(client).signup()
    app = MobileApp(client)
    issued = app.sign_in(credentials)
    assert issued.status_code == 200
    body = issued.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert issued.headers["cache-control"] == "no-store"
    assert "set-cookie" not in issued.headers
    me = app.me()
    assert me.status_code == 200 and me.json()["email"] == credentials.email

    old_refresh, old_access = app.refresh_token, app.access
    refreshed = app.refresh()
    assert refreshed.status_code == 200 and refreshed.headers["cache-control"] == "no-store"
    assert app.refresh_token != old_refresh and app.access != old_access
    assert app.me().status_code == 200
    assert app.me(bearer=old_access).status_code == 200  # lives on until it expires

    assert (
        app.request(
            "POST", REVOKE, bearer="", json={"refresh_token": app.refresh_token}
        ).status_code
        == 204
    )
    dead = app.refresh()
    assert dead.status_code == 401 and dead.json()["code"] == "invalid_refresh_token"
    # Revoking is always 204, known token or not.
    for token in (app.refresh_token, "never-issued-token"):
        assert (
            app.request("POST", REVOKE, bearer="", json={"refresh_token": token}).status_code == 204
        )


def test_wrong_credentials_get_the_login_answer(client: TestClient) -> None:
    credentials = Browser(client).signup()
    app = MobileApp(client)
    wrong = app.sign_in(Credentials(credentials.email, "", "wrong-password-123"))
    unknown = app.sign_in(Credentials("nobody@example.com", "", credentials.password))
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"
    assert wrong.json() == unknown.json()


def test_token_bodies_are_validated(signed: Signed) -> None:
    app = signed.app
    for url, body in [
        (TOKEN, {"email": signed.credentials.email}),
        (TOKEN, {**signed.credentials.as_json()}),  # `username` is not a field here
        (REFRESH, {}),
        (REFRESH, {"refresh_token": ""}),
        (REFRESH, {"refresh_token": "x" * 300}),
        (REVOKE, {"refresh_token": app.refresh_token, "token_type_hint": "access_token"}),
    ]:
        response = app.request("POST", url, bearer="", json=body)
        assert response.status_code == 422, (url, body)


def test_refresh_rotation_and_reuse_revokes_the_family(signed: Signed, client: TestClient) -> None:
    app = signed.app
    other_device = new_app(client, signed.credentials)
    first = app.refresh_token
    assert app.refresh().status_code == 200
    second = app.refresh_token
    assert app.refresh().status_code == 200
    newest = app.refresh_token

    # The rotated-out token comes back: 401, and the whole family ends.
    reused = app.refresh(first)
    assert reused.status_code == 401 and reused.json()["code"] == "invalid_refresh_token"
    assert app.refresh(newest).status_code == 401
    assert app.refresh(second).status_code == 401
    # The same user's other sign-in is untouched.
    assert other_device.refresh().status_code == 200


def test_concurrent_refreshes_with_one_token_let_exactly_one_win(signed: Signed) -> None:
    token = signed.app.refresh_token
    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(lambda _: signed.app.refresh(token).status_code, range(2)))
    assert statuses == [200, 401]


# --- bearer requests and CSRF --------------------------------------------------------------


def test_bearer_requests_need_no_csrf_token(signed: Signed) -> None:
    name = new_credentials().username
    response = signed.app.request("PATCH", ME, json={"username": name})
    assert response.status_code == 200 and response.json()["username"] == name
    # A session cookie without a bearer token still needs one.
    renamed = signed.browser.patch(ME, json={"username": new_credentials().username}, csrf=False)
    assert renamed.status_code == 403 and renamed.json()["code"] == "csrf_failed"
    assert signed.browser.me().json()["username"] == name


def test_token_endpoints_need_no_csrf_even_beside_a_session_cookie(signed: Signed) -> None:
    browser = signed.browser  # holds a live session cookie
    issued = browser.post(
        TOKEN,
        json={"email": signed.credentials.email, "password": signed.credentials.password},
        csrf=False,
    )
    assert issued.status_code == 200
    refreshed = browser.post(
        REFRESH, json={"refresh_token": issued.json()["refresh_token"]}, csrf=False
    )
    assert refreshed.status_code == 200
    revoked = browser.post(
        REVOKE, json={"refresh_token": refreshed.json()["refresh_token"]}, csrf=False
    )
    assert revoked.status_code == 204
    assert "set-cookie" not in issued.headers and "set-cookie" not in refreshed.headers


def test_an_expired_access_token_sent_along_does_not_block_its_refresh(signed: Signed) -> None:
    response = signed.app.request(
        "POST",
        REFRESH,
        bearer="expired.or.garbage",
        json={"refresh_token": signed.app.refresh_token},
    )
    assert response.status_code == 200


def test_an_invalid_bearer_is_401_even_beside_a_live_session(signed: Signed) -> None:
    response = signed.browser.get(ME, headers={"Authorization": "Bearer not-a-valid-token"})
    assert_invalid_token(response)
    assert signed.browser.me().status_code == 200  # the session itself is fine


def test_a_bearer_token_is_the_only_credential_looked_at(
    signed: Signed, client: TestClient
) -> None:
    other = new_credentials()
    assert Browser(client).register(other).status_code == 201
    other_app = new_app(client, other)
    response = signed.browser.get(ME, headers={"Authorization": f"Bearer {other_app.access}"})
    assert response.status_code == 200 and response.json()["email"] == other.email
    # And it carries no CSRF exemption for the cookie's session: the bearer user acts.
    name = new_credentials().username
    renamed = signed.browser.patch(
        ME,
        json={"username": name},
        csrf=False,
        headers={"Authorization": f"Bearer {other_app.access}"},
    )
    assert renamed.status_code == 200 and renamed.json()["email"] == other.email
    assert signed.browser.me().json()["username"] != name


def test_other_authorization_schemes_are_not_credentials(signed: Signed) -> None:
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    signed.app.access = None
    anonymous = signed.app.request("GET", ME, headers=basic)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    assert signed.browser.get(ME, headers=basic).status_code == 200  # the cookie counts


def test_session_routes_work_for_bearer_callers(signed: Signed) -> None:
    sessions = signed.app.request("GET", "/api/v1/auth/sessions")
    assert sessions.status_code == 200
    items = sessions.json()["items"]
    assert len(items) == 1 and items[0]["current"] is False  # the browser's session
    ended = signed.app.request("DELETE", f"/api/v1/auth/sessions/{items[0]['id']}")
    assert ended.status_code == 204
    assert signed.browser.me().status_code == 401
    assert signed.app.me().status_code == 200


# --- ending tokens -------------------------------------------------------------------------


def test_bearer_logout_ends_this_sign_in_only(signed: Signed, client: TestClient) -> None:
    other_device = new_app(client, signed.credentials)
    assert signed.app.request("POST", "/api/v1/auth/logout").status_code == 204
    assert signed.app.refresh().status_code == 401
    assert other_device.refresh().status_code == 200
    assert signed.browser.me().status_code == 200
    # The access token is stateless: it works until it expires (at most expires_in).
    assert signed.app.me().status_code == 200


def test_logout_all_with_a_bearer_token_ends_every_session_and_token(
    signed: Signed, client: TestClient
) -> None:
    other_device = new_app(client, signed.credentials)
    assert signed.app.request("POST", "/api/v1/auth/logout-all", json={}).status_code == 204
    assert_invalid_token(signed.app.me())
    assert_invalid_token(other_device.me())
    assert signed.app.refresh().status_code == 401
    assert other_device.refresh().status_code == 401
    assert signed.browser.me().status_code == 401
    # Signing in again works at once.
    again = new_app(client, signed.credentials)
    assert again.me().status_code == 200


def test_logout_all_keep_current_with_a_bearer_token_keeps_this_sign_in(
    signed: Signed, client: TestClient
) -> None:
    other_device = new_app(client, signed.credentials)
    response = signed.app.request("POST", "/api/v1/auth/logout-all", json={"keep_current": True})
    assert response.status_code == 204
    assert_invalid_token(signed.app.me())  # every access token ends, this one too
    assert other_device.refresh().status_code == 401
    assert signed.browser.me().status_code == 401
    assert signed.app.refresh().status_code == 200  # this sign-in refreshes once
    assert signed.app.me().status_code == 200


def test_logout_all_from_a_browser_ends_bearer_tokens(signed: Signed) -> None:
    assert (
        signed.browser.post("/api/v1/auth/logout-all", json={"keep_current": True}).status_code
        == 204
    )
    assert_invalid_token(signed.app.me())
    assert signed.app.refresh().status_code == 401
    assert signed.browser.me().status_code == 200


def test_password_change_from_a_browser_ends_bearer_tokens(signed: Signed) -> None:
    new_password = "An-entirely-new-password-42"
    changed = signed.browser.post(
        "/api/v1/auth/password/change",
        json={"current_password": signed.credentials.password, "new_password": new_password},
    )
    assert changed.status_code == 204
    assert_invalid_token(signed.app.me())
    assert signed.app.refresh().status_code == 401
    assert signed.browser.me().status_code == 200
    assert MobileApp(signed.app.client).sign_in(signed.credentials).status_code == 401


def test_password_change_with_a_bearer_token_keeps_this_sign_in(
    signed: Signed, client: TestClient
) -> None:
    other_device = new_app(client, signed.credentials)
    changed = signed.app.request(
        "POST",
        "/api/v1/auth/password/change",
        json={
            "current_password": signed.credentials.password,
            "new_password": "Another-new-pass-77",
        },
    )
    assert changed.status_code == 204
    assert_invalid_token(other_device.me())
    assert other_device.refresh().status_code == 401
    assert signed.browser.me().status_code == 401
    assert_invalid_token(signed.app.me())
    assert signed.app.refresh().status_code == 200
    assert signed.app.me().status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/auth/password/change", {"new_password": "Another-new-pass-77"}),
        ("DELETE", ME, {}),
    ],
    ids=["password-change", "account-deletion"],
)
def test_a_wrong_current_password_with_a_bearer_token_is_403_without_a_challenge(
    signed: Signed, method: str, path: str, body: dict[str, str]
) -> None:
    # The token is fine, the confirmation is not: no 401 and no challenge, which would
    # tell the app to sign in again. (Bearer answers get a challenge on every 401.)
    field = "current_password" if "password/change" in path else "password"
    refused = signed.app.request(method, path, json={**body, field: "not-my-password-at-all"})
    assert refused.status_code == 403 and refused.json()["code"] == "wrong_password"
    assert "www-authenticate" not in refused.headers
    assert signed.app.me().status_code == 200  # control: the same token still works
    # Control: a refused token on the same request is a 401 with the challenge.
    forged = signed.app.request(method, path, bearer="not-a-token", json=body)
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"].startswith("Bearer")


def test_account_deletion_ends_bearer_tokens(signed: Signed) -> None:
    deleted = signed.app.request("DELETE", ME, json={"password": signed.credentials.password})
    assert deleted.status_code == 204
    assert_invalid_token(signed.app.me())
    assert signed.app.refresh().status_code == 401

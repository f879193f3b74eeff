"""Accounts and sessions, end to end through HTTP (API.md "Accounts and auth")."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from entrypoints.http.schemas.auth import LoginResponse, SessionList
from entrypoints.http.schemas.users import UserRead
from tests.unit.http.support import Browser, new_credentials

USER_FIELDS = {"id", "email", "username", "tier", "email_verified", "created_at"}


def test_register_login_me_logout_round_trip(browser: Browser) -> None:
    credentials = new_credentials()

    registered = browser.register(credentials)
    assert registered.status_code == 201
    assert set(registered.json()) == USER_FIELDS
    user = UserRead.model_validate(registered.json())
    assert (user.email, user.username, user.tier, user.email_verified) == (
        credentials.email,
        credentials.username,
        "free",
        False,
    )
    assert isinstance(user.created_at, datetime)

    logged_in = browser.login(credentials.email, credentials.password)
    assert logged_in.status_code == 200
    body = LoginResponse.model_validate(logged_in.json())
    assert body.user.id == user.id
    assert len(body.csrf_token) >= 32

    me = browser.me()
    assert me.status_code == 200
    assert me.json() == registered.json()

    assert browser.post("/api/v1/auth/logout").status_code == 204
    after = browser.me()
    assert after.status_code == 401
    assert after.json()["code"] == "not_authenticated"
    assert after.headers["content-type"].startswith("application/problem+json")


def test_login_is_case_insensitive_on_email(browser: Browser) -> None:
    credentials = new_credentials()
    local, _, domain = credentials.email.partition("@")
    mixed = f"{local.capitalize()}@{domain.title()}"  # e.g. User-ab12@Example.Com
    registered = browser.register({**credentials.as_json(), "email": mixed})
    assert registered.status_code == 201
    assert registered.json()["email"] == credentials.email  # stored folded
    assert browser.login(f" {credentials.email.upper()} ", credentials.password).status_code == 200
    # Control: another address with the same password is not this account.
    other = f"{local}@{domain}.org"
    assert browser.login(other, credentials.password).status_code == 401


def test_email_taken_is_case_insensitive(browser: Browser) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    again = new_credentials()
    response = browser.register(
        {"email": credentials.email.upper(), "username": again.username, "password": again.password}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


def test_username_taken(browser: Browser) -> None:
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    other = new_credentials()
    response = browser.register(
        {"email": other.email, "username": credentials.username, "password": other.password}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("email", "not-an-email", "invalid_email"),
        ("email", "two@@example.com", "invalid_email"),
        ("username", "x", "invalid_username"),
        ("username", "bad name!", "invalid_username"),
        ("password", "short", "weak_password"),
        ("password", "123123123123", "weak_password"),  # common
        ("password", "aaaaaaaaaaaaaaaa", "weak_password"),  # too few distinct characters
    ],
)
def test_registration_rule_violations_are_422_with_the_field(
    browser: Browser, field: str, value: str, code: str
) -> None:
    body = new_credentials().as_json() | {field: value}
    response = browser.register(body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == code
    assert problem["errors"][0]["loc"] == ["body", field]
    if field != "email":  # nothing was created: the same email registers fine afterwards
        retry = new_credentials().as_json() | {"email": body["email"]}
        assert browser.register(retry).status_code == 201


def test_password_equal_to_username_is_refused(browser: Browser) -> None:
    credentials = new_credentials()
    username = "someone_" + credentials.username[-8:] + "xx"
    response = browser.register(
        {"email": credentials.email, "username": username, "password": username}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "weak_password"


@pytest.mark.parametrize("missing", ["email", "username", "password"])
def test_registration_missing_field_is_422(browser: Browser, missing: str) -> None:
    body = new_credentials().as_json()
    del body[missing]
    response = browser.register(body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert {"loc": ["body", missing], "msg": "Field required", "type": "missing"} in problem[
        "errors"
    ]


@pytest.mark.parametrize(
    "extra", [{"tier": "pro"}, {"is_superuser": True}, {"email_verified": True}, {"credits": 10}]
)
def test_registration_with_privileged_fields_is_422_and_creates_nothing(
    browser: Browser, extra: dict[str, object]
) -> None:
    credentials = new_credentials()
    response = browser.register(credentials.as_json() | extra)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["loc"] == ["body", next(iter(extra))]
    assert error["type"] == "extra_forbidden"
    assert browser.login(credentials.email, credentials.password).status_code == 401


def test_validation_errors_never_echo_the_input(browser: Browser) -> None:
    secret = "Sup3r-secret-but-wrong-type"
    response = browser.register({"email": ["x"], "username": "someone", "password": {"p": secret}})
    assert response.status_code == 422
    assert secret not in response.text


def test_patch_username(browser: Browser) -> None:
    browser.signup()
    new_name = new_credentials().username
    response = browser.patch("/api/v1/users/me", json={"username": new_name})
    assert response.status_code == 200
    assert response.json()["username"] == new_name
    assert browser.me().json()["username"] == new_name


def test_patch_to_a_taken_username_is_409(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    other = new_browser()
    taken = other.signup().username
    browser.signup()
    response = browser.patch("/api/v1/users/me", json={"username": taken})
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"


def test_patch_invalid_username_is_422(browser: Browser) -> None:
    browser.signup()
    response = browser.patch("/api/v1/users/me", json={"username": "no spaces allowed"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_username"


@pytest.mark.parametrize(
    "privileged",
    [
        {"tier": "enterprise"},
        {"is_superuser": True},
        {"email_verified": True},
        {"credits": 1_000_000},
        {"email": "other@example.com"},
        {"username": "fine_name_1", "tier": "enterprise"},
    ],
)
def test_privileged_fields_are_not_writable(
    browser: Browser, privileged: dict[str, object]
) -> None:
    browser.signup()
    before = browser.me().json()
    response = browser.patch("/api/v1/users/me", json=privileged)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert browser.me().json() == before


def test_delete_me_with_the_wrong_password_is_403_and_changes_nothing(browser: Browser) -> None:
    browser.signup()
    response = browser.delete("/api/v1/users/me", json={"password": "not-my-password-at-all"})
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_password"
    assert "www-authenticate" not in response.headers  # refused, not signed out
    assert browser.me().status_code == 200


def test_delete_me_ends_every_session_and_login(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    credentials = browser.signup()
    elsewhere = new_browser()
    elsewhere.login_as(credentials)

    response = browser.delete("/api/v1/users/me", json={"password": credentials.password})
    assert response.status_code == 204

    assert browser.me().status_code == 401
    assert elsewhere.me().status_code == 401
    assert browser.login(credentials.email, credentials.password).status_code == 401
    # the email stays taken (soft delete)
    assert browser.register(credentials).json()["code"] == "email_taken"


def test_sessions_list_marks_the_current_one(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    credentials = browser.signup()
    phone = new_browser()
    phone.login_as(credentials)

    mine = SessionList.model_validate(browser.get("/api/v1/auth/sessions").json())
    theirs = SessionList.model_validate(phone.get("/api/v1/auth/sessions").json())
    assert mine.next_cursor is None
    assert len(mine.items) == 2
    assert [s.current for s in mine.items].count(True) == 1
    assert {s.id for s in mine.items} == {s.id for s in theirs.items}
    current_mine = next(s.id for s in mine.items if s.current)
    current_theirs = next(s.id for s in theirs.items if s.current)
    assert current_mine != current_theirs
    assert all(s.user_agent == "testclient" for s in mine.items)
    raw = browser.get("/api/v1/auth/sessions").json()["items"][0]
    assert set(raw) == {"id", "created_at", "last_seen_at", "ip", "user_agent", "current"}


def test_revoke_one_of_my_sessions(browser: Browser, new_browser: Callable[[], Browser]) -> None:
    credentials = browser.signup()
    phone = new_browser()
    phone.login_as(credentials)
    phone_session = next(
        s["id"] for s in phone.get("/api/v1/auth/sessions").json()["items"] if s["current"]
    )

    assert browser.delete(f"/api/v1/auth/sessions/{phone_session}").status_code == 204
    assert phone.me().status_code == 401
    assert browser.me().status_code == 200
    assert browser.delete(f"/api/v1/auth/sessions/{phone_session}").status_code == 404


def test_revoking_another_users_session_is_404_and_it_survives(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    browser.signup()
    victim = new_browser()
    victim.signup()
    victim_session = victim.get("/api/v1/auth/sessions").json()["items"][0]["id"]

    response = browser.delete(f"/api/v1/auth/sessions/{victim_session}")
    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"
    assert victim.me().status_code == 200
    # answered exactly like an id that does not exist
    missing = browser.delete("/api/v1/auth/sessions/999999999")
    assert missing.status_code == 404
    assert missing.json() == response.json()


def test_huge_session_id_is_404_not_500(browser: Browser) -> None:
    browser.signup()
    assert browser.delete(f"/api/v1/auth/sessions/{10**30}").status_code == 404


def test_unauthenticated_access_is_401(browser: Browser) -> None:
    for method, path in [
        ("GET", "/api/v1/users/me"),
        ("PATCH", "/api/v1/users/me"),
        ("DELETE", "/api/v1/users/me"),
        ("GET", "/api/v1/auth/sessions"),
        ("DELETE", "/api/v1/auth/sessions/1"),
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/auth/logout-all"),
        ("POST", "/api/v1/auth/password/change"),
    ]:
        # an invalid body too: authentication is checked before the body
        response = browser.request(method, path, json={"bogus": 1})
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "not_authenticated"

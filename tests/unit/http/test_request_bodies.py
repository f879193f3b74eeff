"""Request bodies: malformed or non-object JSON, media types, size limits (RELIABILITY.md:
bad input is a 400/413/415/422 problem, never a 500, and changes nothing)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from entrypoints.http.app import all_endpoints
from entrypoints.http.endpoints import Access
from tests.unit.http.conftest import MakeClient
from tests.unit.http.support import Browser, new_credentials


def test_malformed_json_is_400(browser: Browser) -> None:
    browser.signup()
    bodies = (b"{", b'{"username": }', b"\xff\xfe\x00", b"[1, 2", b"1" * 5000, b" ", b"\r\n")
    for body in bodies:
        response = browser.patch(
            "/api/v1/users/me", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, body
        assert response.json()["code"] == "malformed_json"


def test_an_absent_body_means_no_fields(browser: Browser) -> None:
    """Clients that send the JSON content type with no body at all are not refused;
    whitespace declared as JSON is (the test above)."""
    browser.signup()
    response = browser.request(
        "PUT",
        "/api/v1/notifications/preferences",
        content=b"",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["marketing"] is False


def test_absurdly_deep_json_is_400_not_500(browser: Browser) -> None:
    browser.signup()
    body = b"[" * 200_000 + b"]" * 200_000
    response = browser.patch(
        "/api/v1/users/me", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


NOT_OBJECTS = (b"[]", b"[1]", b'"username"', b'""', b"42", b"0", b"null", b"true", b"false")
JSON_BODY_ENDPOINTS = [e for e in all_endpoints() if e.body_model is not None]


def test_every_route_with_a_json_body_is_listed() -> None:
    """The next test covers these routes; a new one with a body joins it by itself."""
    assert {(e.method, e.path) for e in JSON_BODY_ENDPOINTS} >= {
        ("POST", "/api/v1/users"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/logout-all"),
        ("PATCH", "/api/v1/users/me"),
        ("DELETE", "/api/v1/users/me"),
        ("PUT", "/api/v1/notifications/preferences"),
    }
    assert ("POST", "/api/v1/conversations/{conversation_id:int}/messages") in {
        (e.method, e.path) for e in JSON_BODY_ENDPOINTS
    }


def test_json_that_is_not_an_object_is_422_on_every_route_with_a_json_body(
    browser: Browser,
) -> None:
    browser.signup()
    before = browser.me().json()
    for endpoint in JSON_BODY_ENDPOINTS:
        # Each request carries what its access rule needs (session CSRF token, or the
        # pre-session token), so only the body can be the reason for the answer.
        headers = {"Content-Type": "application/json"}
        if endpoint.access is Access.PRE_SESSION:
            headers["X-CSRF-Token"] = browser.pre_session_token()
        for body in NOT_OBJECTS:
            # The body is judged before the route runs: any id will do.
            path = re.sub(r"\{\w+:int\}", "1", endpoint.path)
            response = browser.request(endpoint.method, path, content=body, headers=headers)
            where = (endpoint.method, endpoint.path, body)
            assert response.status_code == 422, where
            problem = response.json()
            assert problem["code"] == "validation_failed", where
            errors = [(e["loc"], e["type"]) for e in problem["errors"]]
            assert errors == [(["body"], "model_type")], where
        # Control: the same request with an object gets past the body-type check, to the
        # fields (an unknown one, refused by every body model; required ones missing).
        response = browser.request(
            endpoint.method,
            re.sub(r"\{\w+:int\}", "1", endpoint.path),
            content=b'{"not_a_field": 1}',
            headers=headers,
        )
        assert response.status_code == 422, endpoint.path
        errors = [(e["loc"], e["type"]) for e in response.json()["errors"]]
        assert (["body", "not_a_field"], "extra_forbidden") in errors, endpoint.path
        assert all(len(loc) == 2 for loc, _ in errors), endpoint.path
    assert browser.me().json() == before  # nothing changed, the session still works


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_wrong_content_type_is_415(browser: Browser, content_type: str | None) -> None:
    browser.signup()
    before = browser.me().json()
    headers = {"Content-Type": content_type} if content_type else {}
    response = browser.patch(
        "/api/v1/users/me", content=b'{"username": "changed_name"}', headers=headers
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert browser.me().json() == before


def test_json_with_a_charset_is_accepted(browser: Browser) -> None:
    browser.signup()
    name = new_credentials().username
    response = browser.patch(
        "/api/v1/users/me",
        content=f'{{"username": "{name}"}}'.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json()["username"] == name


def test_body_over_the_declared_limit_is_413(make_client: MakeClient) -> None:
    client = make_client(http={"max_body_bytes": 1024})
    browser = Browser(client)
    credentials = new_credentials()
    body = credentials.as_json() | {"padding": "x" * 2000}
    token = browser.pre_session_token()
    response = browser.post("/api/v1/users", json=body, headers={"X-CSRF-Token": token})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert browser.register(credentials).status_code == 201  # nothing was created


def test_streamed_body_over_the_limit_is_413(make_client: MakeClient) -> None:
    client = make_client(http={"max_body_bytes": 1024})
    browser = Browser(client)
    token = browser.pre_session_token()

    def chunks() -> Iterator[bytes]:
        yield b'{"email": "a@example.com", "username": "abc", "password": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    response = browser.post(
        "/api/v1/users",
        content=chunks(),
        headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_default_limit_is_one_mebibyte(browser: Browser) -> None:
    browser.signup()
    response = browser.patch(
        "/api/v1/users/me",
        content=b'{"username": "' + b"x" * (1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_malformed_content_length_is_400(client: TestClient) -> None:
    # (uvicorn refuses these before the app; the middleware does not rely on it)
    response = client.post("/api/v1/users", content=b"{}", headers={"Content-Length": "12abc"})
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"

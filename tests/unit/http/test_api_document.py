"""What the API fuzzer (tests/fuzz) relies on and what it found, as regular tests: the
document states the rules the server enforces, its links name real operations and fields,
and request fields take exactly the JSON types the document gives them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import pytest
from starlette.testclient import TestClient

from entrypoints.http.openapi_links import LINKS, add_links
from tests.unit.http.conftest import MakeClient
from tests.unit.http.support import Browser, new_credentials

LOGOUT_ALL = "/api/v1/auth/logout-all"
ME = "/api/v1/users/me"


def _document(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()  # type: ignore[no-any-return]


def _field(document: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    return document["components"]["schemas"][model]["properties"][name]  # type: ignore[no-any-return]


def _validator(field: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for({"type": "string", **field})


# --- found by the fuzzer: lax types ------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, "true", "false", None])
def test_logout_all_takes_a_json_boolean_only(
    browser: Browser, new_browser: Callable[[], Browser], value: object
) -> None:
    """`{"keep_current": 0}` used to be read as false and end every session."""
    credentials = browser.signup()
    other = new_browser()
    other.login_as(credentials)
    response = browser.post(LOGOUT_ALL, json={"keep_current": value})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "keep_current"]
    assert browser.me().status_code == 200 and other.me().status_code == 200
    # Control: a JSON boolean is taken, and does what it says.
    assert browser.post(LOGOUT_ALL, json={"keep_current": True}).status_code == 204
    assert browser.me().status_code == 200 and other.me().status_code == 401


# --- found while stating the rules in the document: `$` before a final newline -----------


def test_a_username_ending_in_a_newline_is_refused(browser: Browser) -> None:
    credentials = new_credentials()
    body = credentials.as_json() | {"username": credentials.username + "\n"}
    response = browser.register(body)
    assert response.status_code == 422 and response.json()["code"] == "invalid_username"
    assert browser.register(credentials).status_code == 201  # control: without the newline
    browser.login_as(credentials)
    renamed = browser.patch(ME, json={"username": "renamed_once\n"})
    assert renamed.status_code == 422 and renamed.json()["code"] == "invalid_username"
    assert browser.patch(ME, json={"username": "renamed_once"}).status_code == 200


# --- the document states the rules the server enforces -----------------------------------

# Around the core's own whitespace handling (it trims, then refuses whitespace inside),
# where regex dialects disagree: \x1c is whitespace to Python only, \ufeff to JavaScript.
EMAIL_SHAPES = [
    "{u}@example.com",
    " {u}@Example.COM\n",
    "\u3000{u}@example.com\u2003",
    "{u}\x1c@example.com",
    "\x1c{u}@example.com",
    "\ufeff{u}@example.com",
    "{u} x@example.com",
    "{u}@example",
    "{u}@@example.com",
    "{u}@exa mple.com",
    "{u}@.example.com",
    "{u}" + "x" * 60 + "@example.com",
    "{u}@" + "d" * 230 + ".com",
    "{u}@" + "d" * 240 + ".com",
]
USERNAMES = ["{u}", "{u}.x-y_z", "a{u}\n", "_{u}", "{u} x", "é{u}", "ab", "{u}" + "z" * 30]


def _registered(browser: Browser, field: str, value: str) -> bool:
    body = new_credentials().as_json() | {field: value}
    response = browser.register(body)
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        assert response.json()["errors"][0]["loc"] == ["body", field]
    return bool(response.status_code == 201)


@pytest.mark.parametrize(("field", "shapes"), [("email", EMAIL_SHAPES), ("username", USERNAMES)])
def test_the_document_states_exactly_which_emails_and_usernames_register(
    browser: Browser, client: TestClient, field: str, shapes: list[str]
) -> None:
    """The fuzzer generates from these patterns and expects them to hold both ways: what
    they allow registers, what they refuse is refused. Checked with the validator the
    fuzzer reads the document with."""
    validator = _validator(_field(_document(client), "UserCreate", field))
    outcomes = []
    for shape in shapes:
        value = shape.format(u=uuid.uuid4().hex[:10])
        stated = validator.is_valid(value)
        assert _registered(browser, field, value) is stated, (value, stated)
        outcomes.append(stated)
    assert True in outcomes and False in outcomes  # the samples exercise both sides


def test_the_document_states_the_password_policy_minimum(make_client: MakeClient) -> None:
    client = make_client(passwords={"min_length": 16})
    document = _document(client)
    for model, name in [
        ("UserCreate", "password"),
        ("PasswordChange", "new_password"),
        ("PasswordResetConfirm", "new_password"),
    ]:
        assert _field(document, model, name)["minLength"] == 16
    # Passwords set under an earlier policy still sign in and confirm.
    for model, name in [("LoginRequest", "password"), ("PasswordChange", "current_password")]:
        assert _field(document, model, name)["minLength"] == 1
    assert "x-portico-new-password" not in client.get("/openapi.json").text
    # Control: the server refuses what the document refuses, and takes the minimum.
    browser = Browser(client)
    short = new_credentials().as_json() | {"password": "Fifteen-chars-1"}
    assert browser.register(short).json()["code"] == "weak_password"
    assert browser.register(short | {"password": "Sixteen-chars-12"}).status_code == 201


# --- links ----------------------------------------------------------------------------------


def test_links_name_real_operations_parameters_and_fields(client: TestClient) -> None:
    document = _document(client)
    operations = {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
    }
    schemas = document["components"]["schemas"]
    seen = 0
    for (source, status), links in LINKS.items():
        assert operations[source]["responses"][status]["links"] == links
        for link in links.values():
            target = operations[link["operationId"]]
            parameters = {f"{p['in']}.{p['name']}" for p in target.get("parameters", [])}
            assert set(link.get("parameters", {})) <= parameters
            if "requestBody" in link:
                ref = target["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                fields = schemas[ref.rsplit("/", 1)[-1]]["properties"]
                assert set(link["requestBody"]) <= set(fields)
            seen += 1
    assert seen >= 7


def test_a_link_to_an_unknown_operation_is_an_error(client: TestClient) -> None:
    document = _document(client)
    operation = document["paths"]["/api/v1/auth/sessions"]["get"]
    operation["operationId"] = "renamed_list_sessions"  # a handler renamed
    with pytest.raises(LookupError):
        add_links(document)
    operation["operationId"] = "list_sessions"
    add_links(document)  # control: the real names link fine

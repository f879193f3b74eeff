"""Notification preferences through HTTP (API.md "Notifications"), on every profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from entrypoints.http.schemas.notifications import NotificationPreferencesRead
from tests.unit.http.support import Browser

PATH = "/api/v1/notifications/preferences"
DEFAULTS = {"onboarding": True, "product_updates": True, "usage_alerts": True, "marketing": False}


def put(browser: Browser, body: Any, **kwargs: Any) -> Any:
    return browser.request("PUT", PATH, json=body, **kwargs)


def test_get_answers_the_defaults_before_anything_is_saved(browser: Browser) -> None:
    browser.signup()
    response = browser.get(PATH)
    assert response.status_code == 200
    assert response.json() == DEFAULTS
    NotificationPreferencesRead.model_validate(response.json())


def test_put_changes_the_named_flags_and_keeps_the_others(browser: Browser) -> None:
    browser.signup()
    response = put(browser, {"marketing": True, "onboarding": False})
    assert response.status_code == 200
    expected = {**DEFAULTS, "marketing": True, "onboarding": False}
    assert response.json() == expected
    assert browser.get(PATH).json() == expected

    again = put(browser, {"usage_alerts": False, "marketing": None})  # null: unchanged
    assert again.status_code == 200
    assert again.json() == {**expected, "usage_alerts": False}

    # An empty body changes nothing and answers the stored preferences.
    assert put(browser, {}).json() == {**expected, "usage_alerts": False}


def test_preferences_are_the_callers_own(
    browser: Browser, new_browser: Callable[[], Browser]
) -> None:
    browser.signup()
    other = new_browser()
    other.signup()
    assert put(browser, {"marketing": True}).status_code == 200
    assert other.get(PATH).json() == DEFAULTS


def test_without_a_session_both_methods_are_401(browser: Browser) -> None:
    for response in (browser.get(PATH), put(browser, {"marketing": True})):
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


def test_put_needs_the_csrf_token_and_changes_nothing_without_it(browser: Browser) -> None:
    browser.signup()
    for headers in ({}, {"X-CSRF-Token": "x" * 43}):
        response = put(browser, {"marketing": True}, csrf=False, headers=headers)
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_failed"
    assert browser.get(PATH).json() == DEFAULTS


@pytest.mark.parametrize(
    "body",
    [
        {"security": False},
        {"marketing": True, "is_superuser": True},
        {"marketing": "yes"},
        {"marketing": 1},
        {"marketing": "true"},
        {"onboarding": [True]},
        ["marketing"],
    ],
    ids=["security", "unknown-extra", "string", "int", "string-true", "list-value", "not-object"],
)
def test_unknown_flags_and_non_booleans_are_422_and_change_nothing(
    browser: Browser, body: Any
) -> None:
    browser.signup()
    response = put(browser, body)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert browser.get(PATH).json() == DEFAULTS


def test_malformed_json_is_400(browser: Browser) -> None:
    browser.signup()
    response = browser.request(
        "PUT", PATH, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert browser.get(PATH).json() == DEFAULTS

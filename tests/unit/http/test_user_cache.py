"""The cached user behind each request, over HTTP on every profile: a change to the user
shows on the very next request, though the old copy is still in the cache; a cache that
is down costs nothing but speed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from starlette.testclient import TestClient

from adapters.memory.clock import ManualClock
from core.identity.user_cache import user_key
from core.platform.cache import Cache
from entrypoints.bootstrap.container import build_container
from entrypoints.bootstrap.runtime import Runtime
from entrypoints.http.app import create_app
from tests.unit.core.test_user_cache import DownCache
from tests.unit.http.bearer_support import ME, MobileApp, assert_invalid_token
from tests.unit.http.profiles import profile_settings
from tests.unit.http.support import Browser, Credentials, ResponseChecker

NEW_PASSWORD = "An-entirely-new-password-42"


@dataclass
class Harness:
    client: TestClient
    clock: ManualClock

    @property
    def runtime(self) -> Runtime:
        return self.client.app.state.runtime  # type: ignore[attr-defined,no-any-return]

    def cached(self, user_id: int) -> Any:
        """The raw cache entry of the user (current or not)."""
        assert self.client.portal is not None
        return self.client.portal.call(self.runtime.get(Cache).get, user_key(user_id))

    def later(self) -> None:
        # A change made after the token was issued, but well inside the cache's TTL: the
        # clock drives the memory cache's expiry too.
        self.clock.advance(0.001)


MakeHarness = Callable[..., Harness]


@pytest.fixture
def make_harness(
    profile: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[MakeHarness]:
    clients: list[TestClient] = []

    def make(cache: Cache | None = None) -> Harness:
        settings = profile_settings(profile, request, tmp_path)
        clock = ManualClock(datetime.now(UTC))
        container = build_container(settings)
        container.clock.override(providers.Object(clock))
        if cache is not None:
            container.cache.override(providers.Object(cache))
        client = TestClient(create_app(settings, container=container))
        client.__enter__()
        clients.append(client)
        client.event_hooks = {"request": [], "response": [ResponseChecker(client.app)]}
        return Harness(client, clock)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@dataclass
class Signed:
    harness: Harness
    browser: Browser
    app: MobileApp
    credentials: Credentials
    user_id: int


def signed_and_cached(harness: Harness) -> Signed:
    """A user with a browser session and a bearer token, its record in the cache."""
    browser = Browser(harness.client)
    credentials = browser.signup()
    app = MobileApp(harness.client)
    assert app.sign_in(credentials).status_code == 200
    me = app.me()
    assert me.status_code == 200 and browser.me().status_code == 200
    user_id = int(me.json()["id"])
    assert harness.cached(user_id) is not None
    harness.later()
    return Signed(harness, browser, app, credentials, user_id)


def still_cached(signed: Signed) -> None:
    # The stale copy has not expired: what refuses it is the invalidation.
    assert signed.harness.cached(signed.user_id) is not None


def test_logout_all_refuses_an_earlier_access_token_at_once(make_harness: MakeHarness) -> None:
    signed = signed_and_cached(make_harness())
    response = signed.browser.post("/api/v1/auth/logout-all", json={"keep_current": True})
    assert response.status_code == 204
    still_cached(signed)
    assert_invalid_token(signed.app.me())
    assert signed.browser.me().status_code == 200


def test_password_change_refuses_an_earlier_access_token_at_once(
    make_harness: MakeHarness,
) -> None:
    signed = signed_and_cached(make_harness())
    changed = signed.browser.post(
        "/api/v1/auth/password/change",
        json={"current_password": signed.credentials.password, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204
    still_cached(signed)
    assert_invalid_token(signed.app.me())
    assert signed.browser.me().status_code == 200


def test_account_deletion_refuses_the_session_and_the_token(make_harness: MakeHarness) -> None:
    signed = signed_and_cached(make_harness())
    other = Browser(signed.harness.client)
    other.login_as(signed.credentials)
    assert other.me().status_code == 200
    deleted = signed.browser.delete(ME, json={"password": signed.credentials.password})
    assert deleted.status_code == 204
    still_cached(signed)
    assert other.me().status_code == 401
    assert_invalid_token(signed.app.me())


def test_a_profile_update_shows_on_the_next_request(make_harness: MakeHarness) -> None:
    signed = signed_and_cached(make_harness())
    before = signed.browser.me().json()["username"]
    renamed = f"{before}-x"[:32]
    response = signed.browser.patch(ME, json={"username": renamed})
    assert response.status_code == 200, response.text
    still_cached(signed)
    assert signed.browser.me().json()["username"] == renamed
    assert signed.app.me().json()["username"] == renamed


def test_a_cache_that_is_down_changes_no_answer(make_harness: MakeHarness) -> None:
    down = DownCache()
    harness = make_harness(cache=down)
    browser = Browser(harness.client)
    credentials = browser.signup()
    app = MobileApp(harness.client)
    assert app.sign_in(credentials).status_code == 200
    assert app.me().status_code == 200 and browser.me().status_code == 200
    harness.later()

    renamed = browser.patch(ME, json={"username": "renamed-user"})
    assert renamed.status_code == 200, renamed.text
    assert browser.me().json()["username"] == "renamed-user"
    assert browser.post("/api/v1/auth/logout-all", json={"keep_current": True}).status_code == 204
    assert_invalid_token(app.me())
    assert browser.me().status_code == 200
    assert browser.delete(ME, json={"password": credentials.password}).status_code == 204
    assert browser.me().status_code == 401
    assert down.calls > 0

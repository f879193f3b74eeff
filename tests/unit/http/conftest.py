"""Fixtures of the HTTP suite: one app per test, parametrized over the profiles."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from entrypoints.http.app import create_app
from tests.unit.http.profiles import PROFILES, profile_settings
from tests.unit.http.support import Browser, ResponseChecker

MakeClient = Callable[..., TestClient]


@pytest.fixture(params=PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(
    profile: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[MakeClient]:
    """Build and start (lifespan included) an app for the current profile.

    `make_client(base_url="https://testserver", sessions={"cookie_secure": True})`.
    """
    counter = itertools.count()
    with ExitStack() as stack:

        def make(base_url: str = "http://testserver", **overrides: Any) -> TestClient:
            directory = tmp_path / f"app{next(counter)}"
            directory.mkdir()
            settings = profile_settings(profile, request, directory, **overrides)
            app = create_app(settings)
            client = stack.enter_context(TestClient(app, base_url=base_url))
            client.event_hooks = {"request": [], "response": [ResponseChecker(app)]}
            return client

        yield make


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


@pytest.fixture
def browser(client: TestClient) -> Browser:
    return Browser(client)


@pytest.fixture
def new_browser(client: TestClient) -> Callable[[], Browser]:
    """More user agents on the same app (their own cookies)."""
    return lambda: Browser(client)

"""Fixtures of the admin suite: the composed app (API + panel) on the SQL profiles
(the panel reads tables: `embedded` is SQLite in tmp_path, `services` Postgres and Redis)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from entrypoints.asgi import create_asgi_app
from tests.unit.admin.support import AdminBrowser
from tests.unit.http.profiles import PROFILES, profile_settings

SQL_PROFILES = [p for p in PROFILES if p.values[0] != "memory"]
MakePanel = Callable[..., TestClient]


@pytest.fixture(params=SQL_PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_panel(
    profile: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> Iterator[MakePanel]:
    """`make_panel(client=("10.1.2.3", 5000), admin={"allowed_networks": [...]})`."""
    counter = itertools.count()
    with ExitStack() as stack:

        def make(client: tuple[str, int] = ("127.0.0.1", 50000), **overrides: Any) -> TestClient:
            directory = tmp_path / f"panel{next(counter)}"
            directory.mkdir()
            admin = {"enabled": True, **overrides.pop("admin", {})}
            settings = profile_settings(profile, request, directory, admin=admin, **overrides)
            app = create_asgi_app(settings)
            return stack.enter_context(TestClient(app, client=client))

        yield make


@pytest.fixture
def panel(make_panel: MakePanel) -> TestClient:
    return make_panel()


@pytest.fixture
def admin(panel: TestClient) -> AdminBrowser:
    return AdminBrowser(panel)

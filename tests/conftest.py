"""Fixtures shared by every test: no developer's settings, and real-server URLs with
isolation per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.bootstrap.settings import Settings
from tests.databases import fresh_postgres_database
from tests.environment import developer_variables
from tests.log_safety.plugin import LogSafety
from tests.services import RABBITMQ_URL, REDIS_TEST_DB, REDIS_URL, need, reachable

TESTS = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    """The log-safety check (tests/log_safety): what these suites log holds no secret."""
    config.pluginmanager.register(
        LogSafety(checked=[TESTS / "integration", TESTS / "unit" / "http"]), "log_safety"
    )


def _settings_classes() -> list[type[Settings]]:
    """`Settings` and every subclass defined so far (tests define some)."""
    found: list[type[Settings]] = []
    pending = [Settings]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.fixture(autouse=True)
def no_developer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test builds its `Settings` from what it passes and nothing of the machine's:
    the developer's `PORTICO_*` variables are removed for the test, and no `.env` file is
    read (pydantic-settings reads `model_config["env_file"]` at each construction).

    Tests that need a variable set it with `monkeypatch.setenv` in the test; fixtures of
    a wider scope run before this one and must build child environments themselves (see
    `tests/integration/celery_processes.py`).
    """
    for name in developer_variables(os.environ):
        monkeypatch.delenv(name)
    for cls in _settings_classes():
        monkeypatch.setitem(cls.model_config, "env_file", None)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, empty Postgres database for this test session; dropped afterwards.

    Yields a SQLAlchemy URL (`postgresql+asyncpg://...`).
    """
    with fresh_postgres_database("session") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the machine's Redis, on the logical database reserved for tests."""
    need("Redis", reachable(REDIS_URL, 6379))
    return f"{REDIS_URL.rstrip('/')}/{REDIS_TEST_DB}"


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """URL of the machine's RabbitMQ (shared: tests use queue names of their own)."""
    need("RabbitMQ", reachable(RABBITMQ_URL, 5672))
    return RABBITMQ_URL


@pytest.fixture(scope="session")
def memcached_servers() -> list[str]:
    """The machine's Memcached servers as "host:port" (env PORTICO_TEST_MEMCACHED, comma
    separated). Shared: tests isolate themselves with a unique `key_prefix`."""
    spec = os.environ.get("PORTICO_TEST_MEMCACHED", "127.0.0.1:11211")
    servers = [s.strip() for s in spec.split(",") if s.strip()]
    need("Memcached", bool(servers) and all(reachable(f"//{s}", 11211) for s in servers))
    return servers


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix unique to one test, so tests never see each other's keys."""
    return f"portico-test:{uuid.uuid4().hex[:10]}:"

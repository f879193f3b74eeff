"""The profiles the HTTP suite runs on, defined in one place.

- memory:   users and sessions in process; pure unit, no sockets.
- embedded: a SQLite file in the test's tmp_path (tables auto-created), sessions in memory.
- services: Postgres (a database made for this test session, its job queue emptied
            before each test) and Redis sessions under a key prefix unique to the
            test; marked `integration`.

Every profile uses the cheapest argon2 parameters (tests only).

`PORTICO_TEST_EDGE_BACKEND` (memory, redis or memcached; CI runs the suite once with
each) puts the cache and the rate limiter of every profile on that backend, under key
prefixes unique to the test, so the same tests prove the backends interchangeable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from entrypoints.bootstrap.settings import Settings
from tests.databases import forget_queued_jobs
from tests.services import drop_redis_keys
from tests.settings_merge import merge

_ALL_PROFILES = [
    pytest.param("memory", id="memory"),
    pytest.param("embedded", id="embedded"),
    pytest.param("services", id="services", marks=pytest.mark.integration),
]
# `PORTICO_TEST_PROFILES=memory` (comma-separated) runs the suite on some profiles only:
# the edge-backend runs of CI use it, since the cache and the rate limiter behave the
# same whatever database is behind them (`make test` runs every profile).
_SELECTED = {
    name.strip() for name in os.environ.get("PORTICO_TEST_PROFILES", "").split(",") if name.strip()
}
PROFILES = [p for p in _ALL_PROFILES if not _SELECTED or p.values[0] in _SELECTED]

EDGE_BACKEND = os.environ.get("PORTICO_TEST_EDGE_BACKEND", "memory")
TEST_SECRET = "http-test-secret-key-that-is-long-enough-0123456789"


def profile_settings(
    profile: str, request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any
) -> Settings:
    """Settings for `profile`; `overrides` are nested dicts like `http={"max_body_bytes": 1024}`."""
    values: dict[str, Any] = {
        "env": "test",
        "secret_key": TEST_SECRET,
        "passwords": {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True},
        # Mail stays in the sender's outbox, where tests can read it (and nothing prints).
        "email": {"backend": "memory"},
    }
    if profile == "memory":
        values["database"] = {"backend": "memory"}
        values["sessions"] = {"backend": "memory"}
    elif profile == "embedded":
        db_file = tmp_path / "portico.db"
        values["database"] = {"url": f"sqlite+aiosqlite:///{db_file}", "auto_create": True}
        values["sessions"] = {"backend": "memory"}
    elif profile == "services":
        redis_url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("key_prefix")
        database_url: str = request.getfixturevalue("postgres_database")
        forget_queued_jobs(database_url)
        values["database"] = {"url": database_url, "auto_create": True}
        values["redis"] = {"url": redis_url}
        values["sessions"] = {"backend": "redis", "key_prefix": prefix}
        request.addfinalizer(lambda: drop_redis_keys(redis_url, prefix))
    else:  # pragma: no cover
        raise ValueError(f"unknown profile {profile!r}")
    _edge_backends(values, request)
    return Settings(_env_file=None, **merge(values, overrides))  # type: ignore[call-arg]


def _edge_backends(values: dict[str, Any], request: pytest.FixtureRequest) -> None:
    """Cache and rate limiter on `EDGE_BACKEND`, isolated per test by key prefix."""
    if EDGE_BACKEND == "memory":
        return
    prefix: str = request.getfixturevalue("key_prefix")
    values["cache"] = {"backend": EDGE_BACKEND, "key_prefix": f"{prefix}cache:"}
    values["rate_limit"] = {"backend": EDGE_BACKEND, "key_prefix": f"{prefix}rl:"}
    if EDGE_BACKEND == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        values.setdefault("redis", {})["url"] = redis_url
        request.addfinalizer(lambda: drop_redis_keys(redis_url, prefix))
    elif EDGE_BACKEND == "memcached":
        servers: list[str] = request.getfixturevalue("memcached_servers")
        values["memcached"] = {"servers": ",".join(servers)}
    else:  # pragma: no cover
        raise ValueError(f"PORTICO_TEST_EDGE_BACKEND={EDGE_BACKEND!r}: memory, redis, memcached")

"""Catalog and tier changes made by a CLI process reach a running server through the
shared cache (Redis or Memcached): the CLI builds the configured cache backend, so what
it changes is forgotten for every process, long before any TTL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.billing.catalog import CatalogService
from core.billing.entitlements import EntitlementService
from core.identity.service import AccountService
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings

pytestmark = pytest.mark.integration

HOUR = "3600"


@pytest.fixture(params=["redis", "memcached"])
def environment(request: pytest.FixtureRequest, tmp_path: Path, key_prefix: str) -> dict[str, str]:
    env = {
        "PORTICO_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        "PORTICO_DATABASE__AUTO_CREATE": "true",
        "PORTICO_LOG_LEVEL": "ERROR",
        "PORTICO_PASSWORDS__ARGON2_TIME_COST": "1",
        "PORTICO_PASSWORDS__ARGON2_MEMORY_KIB": "1024",
        "PORTICO_PASSWORDS__ALLOW_WEAK_HASHING": "true",
        "PORTICO_EMAIL__BACKEND": "memory",
        "PORTICO_CACHE__BACKEND": request.param,
        "PORTICO_CACHE__KEY_PREFIX": key_prefix,
        # Long lifetimes: only forgetting can explain a fresh read.
        "PORTICO_CACHE__USER_TTL_SECONDS": HOUR,
        "PORTICO_BILLING__ENTITLEMENTS_TTL_SECONDS": HOUR,
    }
    if request.param == "redis":
        env["PORTICO_REDIS__URL"] = request.getfixturevalue("redis_url")
    else:
        env["PORTICO_MEMCACHED__SERVERS"] = ",".join(request.getfixturevalue("memcached_servers"))
    return env


@pytest.fixture
async def server(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Runtime]:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    runtime = await start_runtime(Settings(), run_jobs=False)
    try:
        yield runtime
    finally:
        await runtime.aclose()


def _cli(environment: dict[str, str], *argv: str) -> str:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *argv],
        env={**inherited, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_cli_process_changes_what_the_server_serves(
    server: Runtime, environment: dict[str, str]
) -> None:
    catalog = server.get(CatalogService)
    assert await catalog.public_tiers() == []  # cached: the empty catalog
    assert await catalog.public_tiers() == []

    _cli(environment, "seed")
    assert [t.code for t in await catalog.public_tiers()] == ["free", "pro", "enterprise"]

    accounts, entitlements = server.get(AccountService), server.get(EntitlementService)
    user = await accounts.register("ida@example.com", "ida", "correct horse battery")
    assert user.id is not None
    before = await entitlements.entitlements(await accounts.get(user.id))  # cached now
    assert before.tier == "free"
    free_daily = before.limits["messages"].amount

    _cli(environment, "tier", "set", "--email", "ida@example.com", "--code", "pro", "--reason", "t")
    after = await entitlements.entitlements(await accounts.get(user.id))
    assert after.tier == "pro"
    assert after.limits["messages"].amount > free_daily

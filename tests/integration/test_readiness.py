"""Readiness reports a dependency that does not answer (a closed loopback port)."""

from __future__ import annotations

from pathlib import Path

from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings

CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True}


def _settings(**overrides: object) -> Settings:
    return Settings(secret_key="k" * 48, passwords=CHEAP_HASHING, **overrides)  # type: ignore[arg-type]


async def test_unreachable_database_is_reported_by_readiness(tmp_path: Path) -> None:
    settings = _settings(
        database={
            "url": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
            "connect_timeout_seconds": 1,
        }
    )
    runtime = await start_runtime(settings)
    try:
        report = await runtime.readiness()
        assert report["sessions"] == "ok"
        assert report["database"] != "ok"
    finally:
        await runtime.aclose()

"""Readiness reports each dependency, and one that does not answer (a closed loopback port)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings
from entrypoints.http.app import create_app

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


# --- the job broker and Memcached, when selected ------------------------------------------

MEMORY_APP = {"database": {"backend": "memory"}, "jobs": {"runner": "celery", "relay": False}}


@pytest.mark.integration
@pytest.mark.parametrize("broker", ["rabbitmq", "redis"])
async def test_the_celery_broker_is_probed_with_its_latency(
    broker: str, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue("rabbitmq_url" if broker == "rabbitmq" else "redis_url")
    runtime = await start_runtime(
        _settings(**MEMORY_APP, celery={"broker_url": url}), run_jobs=False
    )
    try:
        for _ in range(2):  # the second probe reuses the kept connection
            report = (await runtime.dependencies())["broker"]
            assert report.ok, report
            assert report.backend == ("amqp" if broker == "rabbitmq" else "redis")
            assert report.required and 0 < report.latency_ms < 2000
    finally:
        await runtime.aclose()


@pytest.mark.integration
def test_a_broker_that_is_down_makes_the_app_unready_by_name() -> None:
    settings = _settings(
        **MEMORY_APP,
        celery={"broker_url": "amqp://portico:secret@127.0.0.1:1//", "connect_timeout_seconds": 1},
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.headers["retry-after"]
        body = response.json()
        assert body["checks"]["broker"] == "The job broker is unavailable."
        assert body["dependencies"]["broker"]["status"] == "down"
        assert body["dependencies"]["broker"]["backend"] == "amqp"
        assert body["checks"]["sessions"] == "ok"
        assert "secret" not in response.text  # the URL's password never shows
        assert client.get("/health").status_code == 200


@pytest.mark.integration
async def test_memcached_is_probed_when_selected(memcached_servers: list[str]) -> None:
    runtime = await start_runtime(
        _settings(
            database={"backend": "memory"},
            cache={"backend": "memcached", "key_prefix": "portico-test-ready:"},
            rate_limit={"backend": "memcached", "key_prefix": "portico-test-ready-rl:"},
            memcached={"servers": ",".join(memcached_servers)},
        )
    )
    try:
        report = await runtime.dependencies()
        assert {report["cache"].backend, report["rate_limit"].backend} == {"memcached"}
        assert report["cache"].ok and report["rate_limit"].ok
    finally:
        await runtime.aclose()


@pytest.mark.integration
async def test_memcached_down_is_reported_within_the_probe_timeout() -> None:
    runtime = await start_runtime(
        _settings(
            database={"backend": "memory"},
            cache={"backend": "memcached"},
            memcached={"servers": "127.0.0.1:1", "connect_timeout_seconds": 0.5},
        )
    )
    try:
        report = (await runtime.dependencies())["cache"]
        assert not report.ok and report.backend == "memcached"
        assert report.latency_ms <= 2500
    finally:
        await runtime.aclose()

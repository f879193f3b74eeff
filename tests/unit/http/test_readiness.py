"""`/ready` reports each dependency with its latency and fails closed; `/health` asks none."""

from __future__ import annotations

import asyncio

import pytest
from starlette.testclient import TestClient

from core.shared.errors import UnavailableError
from entrypoints.bootstrap import runtime as runtime_module
from tests.unavailable import UnreachableRateLimiter
from tests.unit.http.conftest import MakeClient
from tests.unit.http.profiles import EDGE_BACKEND


def _runtime(client: TestClient) -> runtime_module.Runtime:
    return client.app.state.runtime  # type: ignore[attr-defined,no-any-return]


async def _refused() -> None:
    raise UnavailableError("connection refused", dependency="sessions")


def test_each_dependency_is_reported_with_its_latency_and_backend(
    client: TestClient, profile: str
) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    dependencies = body["dependencies"]
    assert set(dependencies) == set(body["checks"])
    for name, report in dependencies.items():
        assert report["status"] == "ok", name
        assert report["required"] is True, name
        assert 0 <= report["latency_ms"] < 2000, name
    assert dependencies["sessions"]["backend"] == ("redis" if profile == "services" else "memory")
    if profile != "memory":
        expected = "postgresql" if profile == "services" else "sqlite"
        assert dependencies["database"]["backend"] == expected
    if EDGE_BACKEND != "memory":
        assert dependencies["cache"]["backend"] == EDGE_BACKEND


def test_a_required_dependency_down_is_a_503_naming_it(client: TestClient) -> None:
    _runtime(client).probes["sessions"] = _refused  # type: ignore[index]
    response = client.get("/ready")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["sessions"] == "connection refused"
    assert body["dependencies"]["sessions"]["status"] == "down"
    assert body["dependencies"]["sessions"]["required"] is True
    # Liveness asks no dependency: the process is alive.
    health = client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}


@pytest.mark.parametrize("profile", ["memory"])
def test_a_probe_that_hangs_is_cut_at_the_timeout(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "PROBE_TIMEOUT_SECONDS", 0.05)

    async def hangs() -> None:
        await asyncio.Event().wait()  # never set: only the timeout ends it

    _runtime(client).probes["sessions"] = hangs  # type: ignore[index]
    response = client.get("/ready")
    assert response.status_code == 503
    report = response.json()["dependencies"]["sessions"]
    assert response.json()["checks"]["sessions"] == "timeout"
    assert 40 <= report["latency_ms"] < 1000


@pytest.mark.parametrize("profile", ["memory"])
def test_an_optional_dependency_down_leaves_the_process_ready(make_client: MakeClient) -> None:
    client = make_client(http={"readiness_optional": ["cache", "broker"]})
    _runtime(client).probes["cache"] = UnreachableRateLimiter().ping  # type: ignore[index]
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["cache"] == "connection refused"
    cache = body["dependencies"]["cache"]
    assert (cache["status"], cache["required"]) == ("down", False)
    assert body["dependencies"]["sessions"]["required"] is True
    # A required one still fails it.
    _runtime(client).probes["sessions"] = _refused  # type: ignore[index]
    assert client.get("/ready").status_code == 503


@pytest.mark.parametrize("profile", ["memory"])
def test_the_rate_limit_store_down_fails_readiness(make_client: MakeClient) -> None:
    client = make_client()
    _runtime(client).probes["rate_limit"] = UnreachableRateLimiter().ping  # type: ignore[index]
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["dependencies"]["rate_limit"]["status"] == "down"


def test_readiness_optional_names_known_dependencies_only(make_client: MakeClient) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        make_client(http={"readiness_optional": ["llm"]})

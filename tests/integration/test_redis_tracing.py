"""Redis commands as spans (tracing on): each command of the shared asyncio client is a
client span under the span that issued it; a command outside any span makes none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind

from core.identity.ports import SessionStore
from core.platform.cache import Cache
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings
from tests.services import drop_redis_keys
from tests.tracing_support import TRACING_ON, children_of, record_spans

pytestmark = pytest.mark.integration


@pytest.fixture
async def runtime(redis_url: str, key_prefix: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        secret_key="k" * 48,
        database={"backend": "memory"},  # type: ignore[arg-type]
        email={"backend": "memory"},  # type: ignore[arg-type]
        redis={"url": redis_url},  # type: ignore[arg-type]
        sessions={"backend": "redis", "key_prefix": f"{key_prefix}s:"},  # type: ignore[arg-type]
        cache={"backend": "redis", "key_prefix": f"{key_prefix}c:"},  # type: ignore[arg-type]
        tracing=TRACING_ON,  # type: ignore[arg-type]
    )
    runtime = await start_runtime(settings, run_jobs=False)
    try:
        yield runtime
    finally:
        await runtime.aclose()
        drop_redis_keys(redis_url, key_prefix)


async def test_redis_commands_are_child_spans_of_the_work_that_issued_them(
    runtime: Runtime,
) -> None:
    assert runtime.tracing is not None
    spans = record_spans(runtime.tracing)
    await runtime.get(SessionStore).get("no-such-session")  # outside any span: no trace
    with runtime.tracing.tracer.start_as_current_span("request", kind=SpanKind.SERVER):
        await runtime.get(SessionStore).get("no-such-session")
        await runtime.get(Cache).set("k", {"v": 1}, ttl_seconds=60, tags=["t"])
    finished = spans.get_finished_spans()
    (request,) = [s for s in finished if s.name == "request"]
    commands = children_of(finished, request)
    assert len(commands) >= 2
    assert all(s.kind is SpanKind.CLIENT for s in commands)
    assert {s.attributes.get("db.system") for s in commands} == {"redis"}
    # Only what ran inside the request was traced.
    assert [s for s in finished if s.parent is None] == [request]

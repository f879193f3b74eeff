"""Tracing outside HTTP: its settings, the sampler, job spans, trace ids in log lines,
the console exporter; and that with tracing off OpenTelemetry is never imported (the
app and the worker, each probed in a fresh interpreter)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import ValidationError

from core.identity.service import AccountService
from entrypoints.bootstrap.logging import configure_logging
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings
from entrypoints.bootstrap.tracing import WorkRoots, start_tracing
from entrypoints.bootstrap.tracing_settings import TracingSettings
from tests.tracing_support import TRACING_ON, children_of, record_spans, trace_hex
from tests.unit.job_probes import PROBE, SPEC

ROOT = Path(__file__).resolve().parents[2]


# --- settings -------------------------------------------------------------------------


def test_tracing_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).tracing.enabled is False  # type: ignore[call-arg]
    monkeypatch.setenv("PORTICO_TRACING__ENABLED", "true")
    monkeypatch.setenv("PORTICO_TRACING__EXPORTER", "console")
    monkeypatch.setenv("PORTICO_TRACING__OTLP_ENDPOINT", "http://collector:4318/v1/traces")
    monkeypatch.setenv("PORTICO_TRACING__SERVICE_NAME", "portico-api")
    monkeypatch.setenv("PORTICO_TRACING__SAMPLE_RATIO", "0.25")
    tracing = Settings(_env_file=None).tracing  # type: ignore[call-arg]
    assert tracing == TracingSettings(
        enabled=True,
        exporter="console",
        otlp_endpoint="http://collector:4318/v1/traces",
        service_name="portico-api",
        sample_ratio=0.25,
    )


@pytest.mark.parametrize(
    "values",
    [{"sample_ratio": 1.5}, {"sample_ratio": -0.1}, {"exporter": "jaeger"}, {"otlp_endpoint": "x"}],
)
def test_bad_tracing_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TracingSettings(**values)


def test_an_empty_endpoint_means_unset() -> None:
    assert TracingSettings(otlp_endpoint="").otlp_endpoint is None


# --- the sampler ----------------------------------------------------------------------


def test_traces_start_at_requests_and_jobs_never_at_a_lone_query() -> None:
    sampler = WorkRoots(1.0)
    trace_id = 0x4BF92F3577B34DA6A3CE929D0E0E4736
    decide = lambda kind: sampler.should_sample(None, trace_id, "x", kind).decision  # noqa: E731
    assert decide(SpanKind.SERVER) is Decision.RECORD_AND_SAMPLE
    assert decide(SpanKind.CONSUMER) is Decision.RECORD_AND_SAMPLE
    assert decide(SpanKind.CLIENT) is Decision.DROP
    assert WorkRoots(0.0).should_sample(None, trace_id, "x", SpanKind.SERVER).decision is (
        Decision.DROP
    )


def test_a_query_inside_a_span_is_recorded_and_one_outside_is_not() -> None:
    tracing = start_tracing(TracingSettings(**TRACING_ON))
    spans = record_spans(tracing)
    tracing.tracer.start_span("lone query", kind=SpanKind.CLIENT).end()
    with tracing.tracer.start_as_current_span("request", kind=SpanKind.SERVER):
        tracing.tracer.start_span("query", kind=SpanKind.CLIENT).end()
    assert sorted(s.name for s in spans.get_finished_spans()) == ["query", "request"]
    tracing.shutdown()


# --- jobs -----------------------------------------------------------------------------


def _settings(profile: str, tmp_path: Path, **overrides: Any) -> Settings:
    database: dict[str, Any] = (
        {"backend": "memory"}
        if profile == "memory"
        else {"url": f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", "auto_create": True}
    )
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        secret_key="k" * 48,
        database=database,  # type: ignore[arg-type]
        email={"backend": "memory"},  # type: ignore[arg-type]
        jobs={"extra_handlers": [SPEC], "poll_interval_seconds": 0.05},  # type: ignore[arg-type]
        **overrides,
    )


@pytest.fixture
async def traced_runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    PROBE.reset()
    runtime = await start_runtime(_settings("embedded", tmp_path, tracing=TRACING_ON))
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def _enqueue(runtime: Runtime, name: str, payload: dict[str, Any], key: str) -> None:
    async with runtime.get(AccountService)._uow() as tx:
        await tx.jobs.enqueue(name, payload, idempotency_key=key)
        await tx.commit()


def _job_spans(spans: Any) -> list[Any]:
    return [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]


async def test_a_job_run_is_a_span_with_its_name_and_attempt(traced_runtime: Runtime) -> None:
    spans = record_spans(traced_runtime.tracing)
    await _enqueue(traced_runtime, "probe.chain", {"left": 0}, "chain-0")
    await traced_runtime.drain_jobs()

    (job,) = _job_spans(spans)
    assert job.name == "job probe.chain"
    assert job.attributes["portico.job.name"] == "probe.chain"
    assert job.attributes["portico.job.attempt"] == 1
    assert job.attributes["portico.job.id"] == PROBE.seen[0].id
    assert job.parent is None  # a trace of its own
    assert job.status.status_code is StatusCode.UNSET


async def test_sql_a_job_runs_is_a_child_of_its_span(traced_runtime: Runtime) -> None:
    spans = record_spans(traced_runtime.tracing)
    # The chain's handler enqueues its successor: an INSERT inside the first job's span.
    await _enqueue(traced_runtime, "probe.chain", {"left": 1}, "chain-1")
    await traced_runtime.drain_jobs()
    first = next(s for s in _job_spans(spans) if s.attributes["portico.job.id"] == PROBE.seen[0].id)
    statements = [
        str(s.attributes["db.statement"]) for s in children_of(spans.get_finished_spans(), first)
    ]
    assert any(statement.startswith("INSERT INTO jobs") for statement in statements), statements


async def test_a_failed_job_run_is_a_failed_span(traced_runtime: Runtime) -> None:
    spans = record_spans(traced_runtime.tracing)
    await _enqueue(traced_runtime, "probe.fail", {}, "fail")
    await traced_runtime.drain_jobs()
    (job,) = _job_spans(spans)
    assert job.name == "job probe.fail"
    assert job.status.status_code is StatusCode.ERROR
    assert [event.name for event in job.events] == ["exception"]


async def test_with_tracing_off_jobs_run_unwrapped(tmp_path: Path) -> None:
    PROBE.reset()
    runtime = await start_runtime(_settings("memory", tmp_path))
    try:
        assert runtime.tracing is None
        await _enqueue(runtime, "probe.record", {"n": 1}, "k")
        await runtime.drain_jobs()
        assert [job.payload for job in PROBE.seen] == [{"n": 1}]
        assert trace.get_current_span().get_span_context().is_valid is False
    finally:
        await runtime.aclose()


# --- trace ids in log lines -----------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    configure_logging("INFO")


def _records(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    lines = capsys.readouterr().out.strip().splitlines()
    return {r["event"]: r for r in (json.loads(line) for line in lines)}


def test_lines_written_inside_a_span_carry_its_ids(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", trace_ids=True)
    tracing = start_tracing(TracingSettings(**TRACING_ON))
    spans = record_spans(tracing)
    with tracing.tracer.start_as_current_span("work", kind=SpanKind.SERVER):
        structlog.get_logger("t").info("structlog inside")
        logging.getLogger("core.something").warning("stdlib inside")
    structlog.get_logger("t").info("outside")
    tracing.shutdown()
    (span,) = spans.get_finished_spans()
    records = _records(capsys)
    for event in ("structlog inside", "stdlib inside"):
        assert (records[event]["trace_id"], records[event]["span_id"]) == trace_hex(span)
    assert "trace_id" not in records["outside"]


def test_with_tracing_off_no_line_carries_trace_ids(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging("INFO", trace_ids=True)
    configure_logging("INFO")  # a later runtime with tracing off: the chain is replaced
    tracing = start_tracing(TracingSettings(**TRACING_ON))
    with tracing.tracer.start_as_current_span("work", kind=SpanKind.SERVER):
        structlog.get_logger("t").info("structlog inside")
        logging.getLogger("core.something").warning("stdlib inside")
    tracing.shutdown()
    records = _records(capsys)
    assert set(records) == {"structlog inside", "stdlib inside"}
    assert not any("trace_id" in r or "span_id" in r for r in records.values())


# --- exporters ------------------------------------------------------------------------


def test_the_console_exporter_prints_finished_spans(capsys: pytest.CaptureFixture[str]) -> None:
    tracing = start_tracing(
        TracingSettings(enabled=True, exporter="console", service_name="portico-test")
    )
    with tracing.tracer.start_as_current_span("printed", kind=SpanKind.SERVER):
        pass
    tracing.shutdown()  # flushes the batch
    (line,) = capsys.readouterr().out.splitlines()  # one line per span
    printed = json.loads(line)
    assert printed["name"] == "printed"
    assert printed["resource"]["attributes"]["service.name"] == "portico-test"


# --- nothing imported with tracing off ------------------------------------------------
# redis-py imports OpenTelemetry whenever it is installed, unless kept out
# (`entrypoints/bootstrap/otel_imports.py`): the probe imports it last, as adapters do.

_APP_AND_WORKER = """
import json, os, sys
from starlette.testclient import TestClient
from entrypoints.bootstrap.settings import Settings
from entrypoints.http.app import create_app

settings = Settings(_env_file=None)
app = create_app(settings)
with TestClient(app) as client:
    assert client.get("/api/v1/auth/csrf").status_code == 200
    http_tracing = app.state.runtime.tracing is not None

os.environ["PORTICO_JOBS__RUNNER"] = "celery"
os.environ["PORTICO_CELERY__BROKER_URL"] = "redis://127.0.0.1:9/0"
from entrypoints.worker import celery_app, process
worker = process.start()  # what `worker_process_init` does in a prefork child
worker_tracing = worker.runtime.tracing is not None
process.stop()
import redis.asyncio  # as the Redis adapters and Celery's Redis transport do
loaded = sorted(
    name for name, module in sys.modules.items()
    if module is not None and (name == "opentelemetry" or name.startswith("opentelemetry."))
)
print(json.dumps({"http": http_tracing, "worker": worker_tracing, "loaded": loaded}))
"""


def _probe(tmp_path: Path, **variables: str) -> dict[str, Any]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    environment.update(
        PYTHONPATH=str(ROOT / "src"),
        PORTICO_ENV="test",
        PORTICO_SECRET_KEY="s" * 48,
        PORTICO_DATABASE__BACKEND="memory",
        PORTICO_EMAIL__BACKEND="memory",
        PORTICO_LOG_LEVEL="WARNING",
        **variables,
    )
    result = subprocess.run(
        [sys.executable, "-c", _APP_AND_WORKER],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_with_tracing_off_the_app_and_the_worker_never_import_opentelemetry(
    tmp_path: Path,
) -> None:
    probed = _probe(tmp_path)
    assert probed == {"http": False, "worker": False, "loaded": []}


def test_with_tracing_on_the_app_and_the_worker_process_trace(tmp_path: Path) -> None:
    # The control: the same probe sees OpenTelemetry once tracing is enabled, and the
    # worker process (started as after the fork) has its own tracer provider.
    probed = _probe(tmp_path, PORTICO_TRACING__ENABLED="true", PORTICO_TRACING__EXPORTER="none")
    assert probed["http"] is True and probed["worker"] is True
    assert "opentelemetry.sdk.trace" in probed["loaded"]

"""OpenTelemetry tracing: the process's tracer provider and what it instruments.

Imported only when `PORTICO_TRACING__ENABLED=true` (this module imports OpenTelemetry;
nothing imports it otherwise, so a process with tracing off never loads the SDK). The
container's `tracing` resource calls `start_tracing` once per runtime, after any fork
(HTTP lifespan, Celery `worker_process_init`), and shuts the provider down (flushing
what is batched) when the runtime closes.

What is traced, each with the provider passed explicitly (never the global one, so
several runtimes in one process, as in tests, keep apart):
- HTTP requests: `tracing_http.HttpTracing` (a server span per request, named by route);
- SQL: every statement of the engine (`instrument_engine`);
- Redis: every command and pipeline of the shared asyncio client (`instrument_redis`);
- jobs: a span per run of a job handler (`trace_job_handlers`).
`add_trace_ids` (a structlog processor) and `current_trace_ids` put the current span's
ids in log lines.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)

from core.platform.jobs import Job, JobHandler
from entrypoints.bootstrap.tracing_settings import TracingSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

INSTRUMENTATION_NAME = "portico"
# Bound on one export to the collector (the batch processor's thread waits, never a request).
EXPORT_TIMEOUT_SECONDS = 10.0


class Tracing:
    """One runtime's tracer provider and the instrumentation built on it."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer(INSTRUMENTATION_NAME)

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Also hand finished spans to `processor` (tests add an in-memory exporter)."""
        self.provider.add_span_processor(processor)

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A client span per statement of `engine` (its sync core, where SQLAlchemy's
        events fire), child of whatever span is current."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider

        # The instrumentor's engine tracer, built directly: `SQLAlchemyInstrumentor` is a
        # process-wide singleton that instruments once and patches `create_engine`.
        # Connection-pool metrics are Prometheus' business here: a no-op meter.
        usage = (
            NoOpMeterProvider()
            .get_meter(INSTRUMENTATION_NAME)
            .create_up_down_counter("db.client.connections.usage")
        )
        tracer = self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
        EngineTracer(tracer, engine.sync_engine, usage)

    def instrument_redis(self, client: Redis) -> None:
        """A client span per command (and per pipeline) of this one client."""
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def trace_job_handlers(self, handlers: Mapping[str, JobHandler]) -> dict[str, JobHandler]:
        """Each handler wrapped in a span per run: `job <name>`, with the job's name, id
        and attempt. An exception marks the span as failed and propagates unchanged."""
        return {name: self._traced_job(name, handler) for name, handler in handlers.items()}

    def _traced_job(self, name: str, handler: JobHandler) -> JobHandler:
        tracer = self.tracer
        span_name = f"job {name}"

        async def traced(job: Job) -> None:
            attributes = {
                "portico.job.name": name,
                "portico.job.id": job.id,
                "portico.job.attempt": job.attempts,
            }
            with tracer.start_as_current_span(
                span_name, kind=trace.SpanKind.CONSUMER, attributes=attributes
            ):
                await handler(job)

        return traced

    def shutdown(self) -> None:
        """Export what is batched (bounded by the exporter's timeout) and stop."""
        self.provider.shutdown()


class WorkRoots(Sampler):
    """Which traces start: a request or a job (server or consumer span), kept at
    `ratio`; never a lone SQL or Redis call (a client span with no parent: the job
    relay's polling, startup), which would make a trace per query of background loops."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind is trace.SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"WorkRoots{{{self._ratio.get_description()}}}"


def start_tracing(settings: TracingSettings) -> Tracing:
    """The provider `settings` describe, with its exporter (none for `none`). A span
    with a parent (a remote `traceparent` included) follows the parent's decision."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(WorkRoots(settings.sample_ratio)),
    )
    exporter = _exporter(settings)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider)


def _exporter(settings: TracingSettings) -> SpanExporter | None:
    if settings.exporter == "console":
        # One JSON line per span, beside the logs, on whatever stdout is at the time.
        return ConsoleSpanExporter(
            out=_CurrentStdout(),  # type: ignore[arg-type]
            formatter=lambda span: span.to_json(indent=None) + "\n",
        )
    if settings.exporter == "otlp":
        # Imported only when selected (protobuf and requests come with it).
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.otlp_endpoint, timeout=EXPORT_TIMEOUT_SECONDS)
    return None


class _CurrentStdout:
    """`sys.stdout` as it is at each write (redirected or captured output honoured)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def current_trace_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids (hex), or None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def add_trace_ids(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: `trace_id` and `span_id` of the current span, if any."""
    ids = current_trace_ids()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event

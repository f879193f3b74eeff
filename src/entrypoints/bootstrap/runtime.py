"""What an entrypoint gets from bootstrap: the settings, the services, jobs, readiness.

An HTTP app, a worker or a CLI calls `start_runtime(settings)` once per process (or per
test), reaches services by type (`runtime.get(AccountService)`) and calls
`await runtime.aclose()` at the end. Nothing is resolved per request.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import structlog

from core.identity.ports import SessionStore
from core.platform.cache import Cache
from core.platform.job_admin import JobAdminService
from core.platform.job_policy import JobPolicy
from core.platform.job_runner import JobRunner, JobWakeup
from core.platform.jobs import JobDispatcher, LocalJobQueue, Outbox
from core.platform.rate_limit import RateLimiter
from core.platform.telemetry import Telemetry
from core.shared.clock import Clock
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.allocator import tune_allocator
from entrypoints.bootstrap.container import Container, build_container, port_providers
from entrypoints.bootstrap.jobs import PERIODIC_JOBS, job_handlers
from entrypoints.bootstrap.logging import configure_logging
from entrypoints.bootstrap.otel_imports import opentelemetry_imports
from entrypoints.bootstrap.policies import build_policies
from entrypoints.bootstrap.security_check import startup_check
from entrypoints.bootstrap.services import Services, build_services
from entrypoints.bootstrap.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from entrypoints.bootstrap.tracing import Tracing

log = structlog.get_logger("portico.bootstrap")

T = TypeVar("T")
ReadinessProbe = Callable[[], Awaitable[None]]
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class DependencyStatus:
    """One dependency's probe: "ok" or a short reason, how long it took, what serves it
    ("postgresql", "redis", "memcached", "amqp"...), and whether readiness fails with it."""

    status: str
    latency_ms: float
    backend: str
    required: bool

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Runtime:
    """One process's services (by type), its job runner and its readiness probes.

    `telemetry` is the process's `Telemetry` (per-request callers read it here, not by
    type); `metrics_registry` holds its Prometheus families, for `/metrics` and the
    worker's metrics port. `tracing` is its tracer provider, None with tracing off.
    """

    settings: Settings
    services: Services
    jobs: JobRunner
    telemetry: Telemetry
    metrics_registry: CollectorRegistry
    probes: Mapping[str, ReadinessProbe] = field(default_factory=dict)
    tracing: Tracing | None = None
    # What serves each probed dependency, by name (reported beside its state).
    backends: Mapping[str, str] = field(default_factory=dict)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)

    def get(self, kind: type[T]) -> T:
        """The process's one instance of a service, port or policy type."""
        return self.services.get(kind)

    async def drain_jobs(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  (a bound on the whole drain)
        """Run due jobs in this task until none is left (tests); `TimeoutError` after
        `timeout` seconds. Call it on the event loop the runtime was started on."""
        await self.jobs.drain(timeout)

    async def readiness(self) -> dict[str, str]:
        """Probe every configured dependency at once: name -> "ok" or a short reason
        (each also sets `portico_dependency_up`)."""
        return {name: report.status for name, report in (await self.dependencies()).items()}

    async def dependencies(self) -> dict[str, DependencyStatus]:
        """Probe every configured dependency at once, each bounded by
        `PROBE_TIMEOUT_SECONDS`: its state, latency, backend, and whether it is required
        (all are, but those listed in `PORTICO_HTTP__READINESS_OPTIONAL`)."""
        optional = frozenset(self.settings.http.readiness_optional)

        async def run(name: str, probe: ReadinessProbe) -> DependencyStatus:
            started = time.perf_counter()
            try:
                await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
            except TimeoutError:
                status = "timeout"
            except UnavailableError as exc:
                status = exc.detail
            except Exception as exc:  # a probe must report, never crash /ready
                status = type(exc).__name__
            else:
                status = "ok"
            return DependencyStatus(
                status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
                backend=self.backends.get(name, "unknown"),
                required=name not in optional,
            )

        names = list(self.probes)
        results = await asyncio.gather(*(run(n, self.probes[n]) for n in names))
        for name, result in zip(names, results, strict=True):
            self.telemetry.dependency_up(name, result.ok)
        return dict(zip(names, results, strict=True))

    async def aclose(self) -> None:
        while self._closers:
            await self._closers.pop()()


async def _provide(provider: Any) -> Any:
    """Call a provider; those downstream of an async Resource return an awaitable."""
    value = provider()
    return await value if inspect.isawaitable(value) else value


async def start_runtime(
    settings: Settings, container: Container | None = None, *, run_jobs: bool = True
) -> Runtime:
    """Build everything a process needs, in dependency order; undo it all on failure.

    `run_jobs` starts this process's job loops as `PORTICO_JOBS__RUNNER` says (the
    inline runner: relay and runner tasks here; Celery: the relay only, unless
    `PORTICO_JOBS__RELAY=false`); Celery workers and the CLI pass False.
    With `PORTICO_ENV=production` the security check runs first and raises
    `SecurityCheckFailed` (listing every problem) before anything starts.
    """
    opentelemetry_imports(settings.tracing)
    configure_logging(settings.log_level, trace_ids=settings.tracing.enabled)
    tune_allocator()
    if settings.is_production:
        # Before anything is built, so a refused start opens no connection and no file.
        startup_check(settings)
    container = container or build_container(settings)
    try:
        # First, so the engine and Redis are instrumented as they open.
        tracing: Tracing | None = await _provide(container.tracing)
        ports = {kind: await _provide(p) for kind, p in port_providers(container).items()}
        if settings.database.backend == "sql" and settings.database.auto_create:
            from adapters.sqlalchemy.schema import create_tables

            await create_tables(await _provide(container.engine))
        services = build_services(ports, build_policies(settings))
        probes, backends, probe_closers = await _readiness_probes(settings, container, services)
        jobs = _job_runner(settings, services, tracing)
    except BaseException:
        await _shutdown(container)
        raise
    if settings.secret_key_generated:
        log.warning(
            "secret_key_generated",
            detail="PORTICO_SECRET_KEY is not set; a random key was made for this process",
        )
    # Closed last to first: the job loops stop before the engine and pools close.
    closers = [lambda: _shutdown(container), *probe_closers, jobs.aclose]
    runtime = Runtime(
        settings,
        services,
        jobs,
        telemetry=services.get(Telemetry),
        metrics_registry=await _provide(container.metrics_registry),
        probes=probes,
        tracing=tracing,
        backends=backends,
        _closers=closers,
    )
    if run_jobs:
        inline = settings.jobs.runner == "inline"
        jobs.start(relay=inline or settings.jobs.relay, runners=inline)
    _freeze_startup_objects()
    return runtime


def _freeze_startup_objects() -> None:
    """Move everything built so far (modules, services, pools) out of the cyclic garbage
    collector's reach: it lives as long as the process, and a full collection that walks
    it all on a busy server is a pause every request in flight waits for."""
    gc.collect()
    gc.freeze()


def _job_runner(settings: Settings, services: Services, tracing: Tracing | None) -> JobRunner:
    inline = settings.jobs.runner == "inline"
    handlers = job_handlers(services, settings)
    if tracing is not None:
        handlers = tracing.trace_job_handlers(handlers)
    return JobRunner(
        outbox=services.get(Outbox),
        dispatcher=services.get(JobDispatcher),
        local=services.get(LocalJobQueue) if inline else None,
        clock=services.get(Clock),
        policy=services.get(JobPolicy),
        wakeup=services.get(JobWakeup),
        admin=services.get(JobAdminService),
        handlers=handlers,
        periodic=PERIODIC_JOBS,
        telemetry=services.get(Telemetry),
    )


async def _readiness_probes(
    settings: Settings, container: Container, services: Services
) -> tuple[dict[str, ReadinessProbe], dict[str, str], list[Callable[[], Awaitable[None]]]]:
    """The dependencies `/ready` checks (what lives outside this process), what serves
    each, and what closes the probes' own connections."""
    probes: dict[str, ReadinessProbe] = {}
    backends: dict[str, str] = {}
    closers: list[Callable[[], Awaitable[None]]] = []
    if settings.database.backend == "sql":
        from adapters.sqlalchemy.engine import ping as ping_database

        engine = await _provide(container.engine)
        probes["database"] = lambda: ping_database(engine)
        backends["database"] = urlsplit(settings.database.url).scheme.partition("+")[0]
    # The sessions store is probed even in memory: a process that cannot reach its own
    # store is not ready, and the probe costs nothing there.
    probes["sessions"] = services.get(SessionStore).ping
    backends["sessions"] = settings.sessions.backend
    if settings.cache.backend != "memory":
        probes["cache"] = services.get(Cache).ping
        backends["cache"] = settings.cache.backend
    if settings.rate_limit.backend != "memory":
        probes["rate_limit"] = services.get(RateLimiter).ping
        backends["rate_limit"] = settings.rate_limit.backend
    if settings.jobs.runner == "celery":
        # Imported only with Celery selected (the import costs memory).
        from adapters.celery.config import broker_scheme
        from adapters.celery.probe import CeleryBrokerProbe
        from entrypoints.bootstrap.celery import celery_options

        options = celery_options(settings)
        broker = CeleryBrokerProbe(options)
        probes["broker"] = broker.ping
        backends["broker"] = broker_scheme(options.broker_url)
        closers.append(broker.aclose)
    return probes, backends, closers


async def _shutdown(container: Container) -> None:
    result = container.shutdown_resources()
    if inspect.isawaitable(result):
        await result

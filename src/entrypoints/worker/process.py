"""One event loop and one runtime per worker process.

Celery tasks are synchronous functions, while the services are async and hold pools
(database engine, Redis) bound to the loop they were created on. So each worker process
keeps ONE `asyncio.Runner` for its whole life, creates the runtime inside it after the
fork, and runs every task's coroutine on it; `asyncio.run()` per task would create a new
loop each time and break the pools (PITFALLS: Celery). Tracing (`PORTICO_TRACING__*`) is
part of the runtime, so each process starts its own tracer provider and export thread
after the fork, never in the parent. With `PORTICO_WORKER__METRICS_PORT`
set, the process also serves its telemetry (`metrics.py`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from entrypoints.bootstrap.otel_imports import opentelemetry_imports
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings
from entrypoints.worker.metrics import serve_metrics

T = TypeVar("T")


class WorkerProcess:
    """The asyncio runner and runtime of one worker process (prefork child or solo)."""

    def __init__(self, settings: Settings) -> None:
        self._runner = asyncio.Runner()
        self._thread = threading.get_ident()
        self._stop_metrics: Callable[[], None] | None = None
        # The worker executes jobs handed to it; relaying is beat's and the HTTP
        # process's business, so no job loops here.
        self.runtime: Runtime = self._runner.run(start_runtime(settings, run_jobs=False))
        self._stop_metrics = serve_metrics(settings.worker, self.runtime.metrics_registry)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if threading.get_ident() != self._thread:
            coroutine.close()
            raise RuntimeError("run the worker with --pool=prefork or --pool=solo, not threads")
        return self._runner.run(coroutine)

    def close(self) -> None:
        if self._stop_metrics is not None:
            self._stop_metrics()
        try:
            self._runner.run(self.runtime.aclose())
        finally:
            self._runner.close()


_current: WorkerProcess | None = None
_settings: Settings | None = None


def configure(settings: Settings) -> None:
    """Remember the settings the process's runtime will be built from (tracing, when
    enabled, starts with it: in each prefork child, after the fork). With tracing off,
    OpenTelemetry is kept out before Celery imports its broker's client."""
    global _settings
    opentelemetry_imports(settings.tracing)
    _settings = settings


def start() -> WorkerProcess:
    """Create this process's runner and runtime (once); `current()` returns it after."""
    global _current
    if _current is None:
        if _settings is None:
            raise RuntimeError("entrypoints.worker.process.configure() was not called")
        _current = WorkerProcess(_settings)
    return _current


def current() -> WorkerProcess:
    # Prefork children start in `worker_process_init`; a solo worker starts at its
    # first task (its main process must not build pools before Celery is running).
    return _current if _current is not None else start()


def stop() -> None:
    global _current
    process, _current = _current, None
    if process is not None:
        process.close()

"""A worker process's own metrics port: its telemetry (jobs, credits, caches, ...) for
Prometheus to scrape, off unless `PORTICO_WORKER__METRICS_PORT` is set.

Each worker process has its own registry (prometheus_client's multiprocess mode would
need its locked, file-backed metric types on every update), so each serves its own
port: prefork child `i` listens on `METRICS_PORT + i` (Celery's process index, stable
when a child is replaced), a solo worker on `METRICS_PORT`. Scrape every port of the
range: `--concurrency=4` with port 9200 is 9200-9203.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from entrypoints.bootstrap.settings import WorkerSettings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = structlog.get_logger("portico.worker")

STOP_TIMEOUT_SECONDS = 5.0


def process_index() -> int:
    """This prefork child's index (0 for a solo worker's main process)."""
    from celery.utils.log import current_process_index

    index = current_process_index(base=0)
    return index if index is not None else 0


def metrics_port(settings: WorkerSettings, index: int) -> int | None:
    """The port of the process with Celery index `index`; None when metrics are off."""
    if settings.metrics_port is None:
        return None
    return settings.metrics_port + index


def serve_metrics(
    settings: WorkerSettings, registry: CollectorRegistry, index: int | None = None
) -> Callable[[], None] | None:
    """Start this process's metrics server (a thread); returns what stops it, or None
    when metrics are off or the port is taken (logged: the worker still runs jobs)."""
    port = metrics_port(settings, process_index() if index is None else index)
    if port is None:
        return None
    # Imported here: a worker without a metrics port never loads the HTTP server.
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=settings.metrics_address, registry=registry)
    except OSError as exc:
        log.error("worker_metrics_unavailable", port=port, error=type(exc).__name__)
        return None
    log.info("worker_metrics_serving", address=settings.metrics_address, port=port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(STOP_TIMEOUT_SECONDS)

    return stop

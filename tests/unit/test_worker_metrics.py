"""A Celery worker process's own metrics: a job run through the worker's task function
lands in the process's registry, and the metrics server (off by default) serves that
registry on the port plus the process index. No broker and no socket: the task is
called directly and the server start is recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.billing.reservations import SWEEP_RESERVATIONS_JOB
from core.platform.jobs import Outbox, job_to_message
from core.shared.clock import Clock
from entrypoints.bootstrap.celery import RUN_JOB_TASK
from entrypoints.bootstrap.settings import Settings, WorkerSettings
from entrypoints.worker import metrics as worker_metrics
from entrypoints.worker import process
from entrypoints.worker.tasks import register_tasks


def _settings(**worker: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        secret_key="k" * 48,
        database={"backend": "memory"},  # type: ignore[arg-type]
        email={"backend": "memory"},  # type: ignore[arg-type]
        worker=worker,  # type: ignore[arg-type]
    )


class StartedServers:
    """Stands in for prometheus_client.start_http_server: records each start."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.stopped = 0

    def __call__(self, port: int, addr: str, registry: Any) -> tuple[Any, Any]:
        self.started.append({"port": port, "addr": addr, "registry": registry})
        owner = self

        class Server:
            def shutdown(self) -> None:
                owner.stopped += 1

            def server_close(self) -> None: ...

        class Thread:
            def join(self, timeout: float) -> None: ...

        return Server(), Thread()


class TaskTable:
    """Stands in for the Celery app: keeps each task function by name (a second real
    app in one process would clash with the first over the task names)."""

    def __init__(self) -> None:
        self.tasks: dict[str, Callable[..., Any]] = {}

    def task(self, name: str, **_: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.tasks[name] = function
            return function

        return register


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> StartedServers:
    recorded = StartedServers()
    monkeypatch.setattr("prometheus_client.start_http_server", recorded)
    return recorded


@pytest.fixture
def worker_process(servers: StartedServers) -> Iterator[process.WorkerProcess]:
    process.configure(_settings(metrics_port=9300, metrics_address="0.0.0.0"))
    try:
        yield process.start()
    finally:
        process.stop()


def test_a_job_run_by_the_worker_task_is_counted_in_the_process_registry(
    worker_process: process.WorkerProcess, servers: StartedServers
) -> None:
    runtime = worker_process.runtime
    assert worker_process.run(runtime.jobs.enqueue_periodic(SWEEP_RESERVATIONS_JOB))
    now = runtime.get(Clock).now()
    (claimed,) = worker_process.run(runtime.get(Outbox).claim(now, limit=10, lease_seconds=60))
    app = TaskTable()
    register_tasks(app)  # type: ignore[arg-type]

    assert app.tasks[RUN_JOB_TASK](job_to_message(claimed)) == "done"
    assert app.tasks[RUN_JOB_TASK](job_to_message(claimed)) == "skipped"  # done already

    registry = runtime.metrics_registry
    labels = {"name": SWEEP_RESERVATIONS_JOB}
    assert registry.get_sample_value("portico_jobs_total", {**labels, "outcome": "done"}) == 1
    assert registry.get_sample_value("portico_jobs_total", {**labels, "outcome": "skipped"}) == 1
    timed = registry.get_sample_value(
        "portico_job_duration_seconds_count", {**labels, "outcome": "done"}
    )
    assert timed == 1
    # The server this process started serves exactly that registry.
    (started,) = servers.started
    assert started == {"port": 9300, "addr": "0.0.0.0", "registry": registry}


def test_the_metrics_server_stops_with_the_process(servers: StartedServers) -> None:
    process.configure(_settings(metrics_port=9300))
    process.start()
    assert servers.started[0]["addr"] == "127.0.0.1"  # the default: local scrapers only
    process.stop()
    assert servers.stopped == 1


def test_no_metrics_port_no_server(servers: StartedServers) -> None:
    process.configure(_settings())
    try:
        process.start()
    finally:
        process.stop()
    assert servers.started == []


def test_each_prefork_child_serves_its_own_port(servers: StartedServers) -> None:
    settings = WorkerSettings(metrics_port=9200)
    assert [worker_metrics.metrics_port(settings, i) for i in range(4)] == [
        9200,
        9201,
        9202,
        9203,
    ]
    assert worker_metrics.metrics_port(WorkerSettings(), 3) is None
    registry = object()
    stop = worker_metrics.serve_metrics(settings, registry, index=2)  # type: ignore[arg-type]
    assert stop is not None and servers.started[-1]["port"] == 9202
    assert worker_metrics.process_index() == 0  # not a prefork child: the main process


def test_a_taken_port_is_logged_and_the_worker_runs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def taken(port: int, addr: str, registry: Any) -> None:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr("prometheus_client.start_http_server", taken)
    registry: Any = object()
    assert worker_metrics.serve_metrics(WorkerSettings(metrics_port=9200), registry) is None

"""The Celery tasks: thin shells that run a coroutine on the process's event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import structlog
from celery import Celery

from core.platform.jobs import job_from_message
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.celery import ENQUEUE_PERIODIC_TASK, RELAY_JOBS_TASK, RUN_JOB_TASK
from entrypoints.worker import process

log = structlog.get_logger("portico.worker")

# A sweep stops after this many full rounds and leaves the rest to the next one, so one
# task never holds a worker for long.
MAX_SWEEP_ROUNDS = 20


def register_tasks(app: Celery) -> None:
    @app.task(name=RUN_JOB_TASK, ignore_result=True)
    def run_job(job: dict[str, Any]) -> str:
        """Execute one outbox job (retries and dead letters are the executor's)."""
        try:
            delivered = job_from_message(job)
        except ValueError:
            # Nothing to retry: the outbox still has the job and its lease brings it back.
            log.error("job_message_malformed")
            return "malformed"
        with _reported("job_outcome_unrecorded", job_id=delivered.id, job=delivered.name):
            worker = process.current()
            jobs = worker.runtime.jobs
            result = worker.run(jobs.run_job(delivered))
            if jobs.take_wakeup():
                # The job enqueued follow-ups: publish them now, not at the next sweep.
                worker.run(jobs.relay_once())
            return result.outcome.value
        return "unrecorded"

    @app.task(name=RELAY_JOBS_TASK, ignore_result=True)
    def relay_jobs() -> int:
        """The sweep: publish due jobs (new, retry due, lease expired)."""
        dispatched = 0
        with _reported("jobs_sweep_failed"):
            worker = process.current()
            for _ in range(MAX_SWEEP_ROUNDS):
                round_ = worker.run(worker.runtime.jobs.relay_once())
                dispatched += round_.dispatched
                if not round_.more_waiting:
                    break
        return dispatched

    @app.task(name=ENQUEUE_PERIODIC_TASK, ignore_result=True)
    def enqueue_periodic(name: str) -> bool:
        """Enqueue the current period's job of a periodic job (a no-op if it exists)."""
        with _reported("periodic_job_not_enqueued", job=name):
            worker = process.current()
            return worker.run(worker.runtime.jobs.enqueue_periodic(name))
        return False


@contextlib.contextmanager
def _reported(event: str, **fields: Any) -> Iterator[None]:
    """Log a failure by type and swallow it: Celery would log its traceback (never in our
    logs), and nothing is lost: the outbox lease (or the next sweep or beat tick) retries."""
    try:
        yield
    except UnavailableError as exc:
        log.warning(event, dependency=exc.dependency, **fields)
    except Exception as exc:
        log.error(event, error=type(exc).__name__, **fields)

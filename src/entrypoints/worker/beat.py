"""The Celery beat schedule.

Two kinds of entries:
- the relay sweep (`portico.relay_jobs` every `PORTICO_JOBS__SWEEP_INTERVAL_SECONDS`):
  a worker claims due jobs and publishes them. It picks up jobs enqueued where no relay
  runs (other workers' jobs, the CLI), retries that came due and jobs whose lease
  expired because their worker died. HTTP processes also relay right after each commit.
- periodic jobs: one entry per `PERIODIC_JOBS` item in `entrypoints/bootstrap/jobs.py`.
  To add one, add a line there (and its handler in `build_job_handlers`), not here: the
  inline runner reads the same list. Beat only asks a worker to enqueue the job of the
  current period; the outbox runs it with retries and dead letters like any job.

Entries expire if no worker picks them up in time, so a busy or stopped pool does not
pile up stale sweeps.
"""

from __future__ import annotations

from typing import Any

from entrypoints.bootstrap.celery import ENQUEUE_PERIODIC_TASK, RELAY_JOBS_TASK
from entrypoints.bootstrap.jobs import PERIODIC_JOBS
from entrypoints.bootstrap.settings import Settings

RELAY_SWEEP_ENTRY = "portico.relay-sweep"


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    sweep = settings.jobs.sweep_interval_seconds
    schedule: dict[str, dict[str, Any]] = {
        RELAY_SWEEP_ENTRY: {
            "task": RELAY_JOBS_TASK,
            "schedule": sweep,
            "options": {"expires": max(sweep * 2, 1.0)},
        }
    }
    for job in PERIODIC_JOBS:
        schedule[f"portico.periodic.{job.name}"] = {
            "task": ENQUEUE_PERIODIC_TASK,
            "schedule": float(job.every_seconds),
            "args": (job.name,),
            "options": {"expires": float(job.every_seconds)},
        }
    return schedule

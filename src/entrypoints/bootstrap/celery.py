"""Celery settings for the job dispatcher (publisher) and the worker entrypoint.

The worker entrypoint reaches the Celery adapter's configuration through here, so it
never imports an adapter itself.
"""

from __future__ import annotations

from typing import Any

from adapters.celery.config import (
    ENQUEUE_PERIODIC_TASK,
    RELAY_JOBS_TASK,
    RUN_JOB_TASK,
    CeleryOptions,
    celery_config,
)
from entrypoints.bootstrap.settings import Settings

__all__ = [
    "ENQUEUE_PERIODIC_TASK",
    "RELAY_JOBS_TASK",
    "RUN_JOB_TASK",
    "celery_options",
    "worker_celery_config",
]


def celery_options(settings: Settings) -> CeleryOptions:
    """The Celery adapter's options; raises `ValueError` when no broker is configured."""
    c = settings.celery
    if not c.broker_url:
        raise ValueError(
            "PORTICO_CELERY__BROKER_URL must be set when PORTICO_JOBS__RUNNER=celery "
            "(or when running a Celery worker or beat)"
        )
    if c.visibility_timeout_seconds <= settings.jobs.timeout_seconds:
        raise ValueError(
            "PORTICO_CELERY__VISIBILITY_TIMEOUT_SECONDS must exceed "
            "PORTICO_JOBS__TIMEOUT_SECONDS, or Redis redelivers jobs that are still running"
        )
    return CeleryOptions(
        broker_url=c.broker_url,
        queue=c.queue,
        visibility_timeout_seconds=c.visibility_timeout_seconds,
        connect_timeout_seconds=c.connect_timeout_seconds,
        publish_timeout_seconds=c.publish_timeout_seconds,
        redis_key_prefix=c.redis_key_prefix,
        remote_control=c.remote_control,
    )


def worker_celery_config(settings: Settings) -> dict[str, Any]:
    """Celery configuration of the worker and beat processes."""
    return celery_config(celery_options(settings))

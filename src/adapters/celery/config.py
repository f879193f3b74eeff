"""Celery configuration shared by the publisher (the relay) and the worker.

Both sides must agree on the task names, the queue and the serializer; everything here is
built from plain values, so the composition root decides where they come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from celery import Celery

RUN_JOB_TASK = "portico.run_job"
RELAY_JOBS_TASK = "portico.relay_jobs"
ENQUEUE_PERIODIC_TASK = "portico.enqueue_periodic"


@dataclass(frozen=True, slots=True)
class CeleryOptions:
    """What a Portico Celery app needs to know.

    `visibility_timeout_seconds` (Redis brokers): how long a delivered but unacknowledged
    message stays invisible before Redis hands it out again; keep it above the longest
    job run, or a running job is delivered twice (harmless, but wasted). Redis keys get
    `redis_key_prefix`, so several deployments or test runs can share one database.
    `remote_control` enables `celery inspect`/`control` (a pidbox per worker).
    """

    broker_url: str
    queue: str = "portico.jobs"
    visibility_timeout_seconds: int = 3600
    connect_timeout_seconds: float = 5.0
    publish_timeout_seconds: float = 5.0
    redis_key_prefix: str = ""
    remote_control: bool = True

    def __post_init__(self) -> None:
        if broker_scheme(self.broker_url) not in ("redis", "amqp"):
            raise ValueError(
                "the Celery broker URL must be redis://, rediss://, amqp:// or amqps://"
            )
        if not self.queue:
            raise ValueError("the Celery queue needs a name")


def broker_scheme(url: str) -> str:
    """`redis` or `amqp` (TLS variants and `pyamqp` included); anything else verbatim."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme in ("amqp", "amqps", "pyamqp"):
        return "amqp"
    return scheme


def _transport_options(options: CeleryOptions, *, publisher: bool) -> dict[str, Any]:
    timeout = options.publish_timeout_seconds
    if broker_scheme(options.broker_url) == "redis":
        transport: dict[str, Any] = {
            "visibility_timeout": options.visibility_timeout_seconds,
            "socket_connect_timeout": options.connect_timeout_seconds,
        }
        if options.redis_key_prefix:
            transport["global_keyprefix"] = options.redis_key_prefix
        if publisher:
            # A consumer blocks in BRPOP (1 s) and must not time out there; a publisher
            # only pushes, so a read timeout bounds a hung server.
            transport["socket_timeout"] = timeout
        return transport
    # RabbitMQ: publisher confirms, so a published job is one the broker accepted.
    transport = {"confirm_publish": True}
    if publisher:
        transport.update(read_timeout=timeout, write_timeout=timeout)
    return transport


def celery_config(options: CeleryOptions, *, publisher: bool = False) -> dict[str, Any]:
    """Celery settings: JSON only, acks late, prefetch 1, no result backend.

    Results live in the outbox (done, retry, dead), so Celery keeps none. Retries are the
    outbox's too: a task never asks Celery to retry it.
    """
    return {
        "broker_url": options.broker_url,
        "broker_connection_timeout": options.connect_timeout_seconds,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": _transport_options(options, publisher=publisher),
        "broker_pool_limit": 2 if publisher else 10,
        # No pickle anywhere: a message is data, never code.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_default_queue": options.queue,
        "task_default_exchange": options.queue,
        "task_default_routing_key": options.queue,
        "task_create_missing_queues": True,
        # A job is acknowledged only after it ran, and requeued if its process dies; the
        # outbox's lease fences off any copy that arrives twice.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_enable_remote_control": options.remote_control,
        # Its ack could not be delivered anyway: the job's lease brings it back, and the
        # outbox records a done job whatever the broker thinks (Celery 6's default).
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Our structured (JSON) log lines go to stdout as they are, not re-logged by Celery.
        "worker_redirect_stdouts": False,
        # kombu retries a failed publish twice (reconnecting); the dispatcher bounds the
        # whole call with `publish_timeout_seconds`.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
    }


def create_celery_app(options: CeleryOptions, *, publisher: bool = False) -> Celery:
    app = Celery("portico", set_as_current=False)
    app.conf.update(celery_config(options, publisher=publisher))
    return app

"""Background jobs: the queue port services write to, and the job as runners see it.

A service enqueues a job through its unit of work (`uow.jobs`); the job exists if and
only if that transaction commits. A relay hands committed jobs to a runner (in-process or
Celery); the runner calls the handler registered under the job's name.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# Payloads cross process boundaries as JSON: plain str/int/float/bool/None, lists, dicts.
JobPayload = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Job:
    """A committed job, as a runner receives it."""

    id: int
    name: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeadJob:
    """A job that used up its retries; kept for inspection and manual retry."""

    id: int
    name: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    last_error: str
    failed_at: datetime
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class JobQueue(Protocol):
    """Enqueues jobs inside the caller's unit of work (the transactional outbox).

    Contract:
    - `enqueue` writes the job in the current transaction: it becomes visible to the
      relay only if the unit of work commits, and disappears with a rollback.
    - `idempotency_key` is unique per job name: enqueuing the same (name, key) again is a
      no-op, in the same transaction or a later one, so retried requests never duplicate
      a job.
    - `payload` must be JSON-serialisable; anything else raises `ValueError` at once.
    - `delay_seconds` postpones the earliest run.
    """

    @abstractmethod
    async def enqueue(
        self,
        name: str,
        payload: JobPayload,
        *,
        idempotency_key: str,
        delay_seconds: float = 0,
    ) -> None: ...


JobHandler = Callable[[Job], Awaitable[None]]
"""A plain async function that does a job's work by calling core services.

It must be idempotent under `job.idempotency_key`: a job can run more than once when a
worker dies after the work but before the job is marked done. Raising any exception
fails the attempt (it is retried with backoff, then dead-lettered); raising
`PermanentJobError` skips the remaining retries.
"""


class PermanentJobError(Exception):
    """A job failure that retrying cannot fix (bad payload, missing template...)."""

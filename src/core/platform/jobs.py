"""Background jobs: the queue port services write to, and the job as runners see it.

A service enqueues a job through its unit of work (`uow.jobs`); the job exists if and
only if that transaction commits. A relay hands committed jobs to a runner (in-process or
Celery); the runner calls the handler registered under the job's name.

The life of a job (one row of the outbox):

    pending --claim--> claimed --start--> running --complete--> done
    running --fail--> pending (due again at retry_at)
    running --dead_letter--> dead --retry_dead--> pending (attempts reset)
    claimed or running, lease expired --claim--> claimed (under a new lease)

`claim` hands out a lease numbered `Job.lease`; only the holder of the newest lease may
start, fail or dead-letter the job, so a runner that lost its lease (it died, or its copy
was delivered twice) can never move the job backwards.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

# Payloads cross process boundaries as JSON: plain str/int/float/bool/None, lists, dicts.
JobPayload = Mapping[str, Any]

MAX_JOB_NAME_LENGTH = 100
MAX_IDEMPOTENCY_KEY_LENGTH = 200
MAX_ERROR_LENGTH = 2000


class JobStatus(StrEnum):
    PENDING = "pending"  # waiting for `available_at`
    CLAIMED = "claimed"  # handed to a runner under a lease, not started yet
    RUNNING = "running"  # a runner is executing it under a lease (renewed by heartbeat)
    DONE = "done"
    DEAD = "dead"  # out of retries: kept for inspection and manual retry


@dataclass(frozen=True, slots=True)
class Job:
    """A committed job, as a runner receives it.

    `attempts` counts the runs started so far (including the current one once started);
    `lease` is the number of the claim this copy was handed out under (see the module
    docstring).
    """

    id: int
    name: str
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int = 0
    created_at: datetime | None = None
    lease: int = 0


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


@dataclass(frozen=True, slots=True)
class JobState:
    """Where one job stands in the outbox (tests and operator tools)."""

    id: int
    name: str
    idempotency_key: str
    status: JobStatus
    attempts: int
    lease: int
    available_at: datetime
    locked_until: datetime | None
    last_error: str | None
    finished_at: datetime | None


def check_job(name: str, payload: JobPayload, idempotency_key: str) -> dict[str, Any]:
    """Validate what `JobQueue.enqueue` receives; return the payload as plain JSON data.

    Raises `ValueError` for an empty or over-long name or key, or a payload that is not
    a JSON object of JSON values (NaN and infinities included: not every store takes them).
    """
    if not name or len(name) > MAX_JOB_NAME_LENGTH:
        raise ValueError(f"a job name needs 1 to {MAX_JOB_NAME_LENGTH} characters")
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValueError(f"an idempotency key needs 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    if not isinstance(payload, Mapping):
        raise ValueError("a job payload must be a mapping")
    try:
        # A round trip gives the runner exactly what a store would give back.
        data = json.loads(json.dumps(dict(payload), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the job payload is not JSON-serialisable: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("a job payload must be a mapping")
    return data


def job_to_message(job: Job) -> dict[str, Any]:
    """The JSON form of a job handed to an out-of-process runner."""
    return {
        "id": job.id,
        "name": job.name,
        "payload": job.payload,
        "idempotency_key": job.idempotency_key,
        "attempts": job.attempts,
        "lease": job.lease,
        "created_at": job.created_at.isoformat() if job.created_at else None,
    }


def job_from_message(message: Mapping[str, Any]) -> Job:
    """Inverse of `job_to_message`; raises `ValueError` on a malformed message."""
    try:
        created = message.get("created_at")
        return Job(
            id=int(message["id"]),
            name=str(message["name"]),
            payload=dict(message["payload"]),
            idempotency_key=str(message["idempotency_key"]),
            attempts=int(message.get("attempts", 0)),
            lease=int(message["lease"]),
            created_at=datetime.fromisoformat(created) if created else None,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed job message: {exc}") from exc


class JobQueue(Protocol):
    """Enqueues jobs inside the caller's unit of work (the transactional outbox).

    Contract:
    - `enqueue` writes the job in the current transaction: it becomes visible to the
      relay only if the unit of work commits, and disappears with a rollback.
    - `idempotency_key` is unique per job name: enqueuing the same (name, key) again is a
      no-op, in the same transaction or a later one, so retried requests never duplicate
      a job. (Finished jobs are remembered until they are purged; see
      `Outbox.purge_finished`.)
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


class Outbox(Protocol):
    """The relay's and the runners' side of the outbox: committed jobs and their state.

    Every method is its own short transaction (never the caller's unit of work) and takes
    the current time from the caller, so every store agrees on one clock. Driver failures
    raise `UnavailableError`.

    Contract:
    - `add` enqueues outside any unit of work (periodic jobs, tools); the same no-op rule
      on (name, idempotency_key) as `JobQueue.enqueue`. True when a job was added.
    - `claim` takes up to `limit` due jobs: pending ones whose `available_at <= now`, and
      claimed or running ones whose lease expired (their runner is presumed dead). Each
      becomes `claimed` with a new lease number and a lease until `now + lease_seconds`.
      Oldest first. Concurrent claimers never get the same job (conditional UPDATE;
      `FOR UPDATE SKIP LOCKED` on Postgres, one writer at a time on SQLite).
    - `start` begins an attempt: only a `claimed` job under `job.lease` becomes
      `running`, with `attempts` + 1 and a lease until `now + lease_seconds`; it returns
      the job as it now stands. Otherwise (done, dead, already started under this lease,
      or claimed again since) it returns None and changes nothing: the caller skips it.
      This is what makes duplicate deliveries harmless.
    - `extend` renews the lease of a job running under `job.lease` (heartbeat); False
      when the job is no longer held under that lease.
    - `complete` marks a started job done. Idempotent: True the first time, False when
      it is already done, dead, or unknown. It does not check the lease: the work is
      done, whoever did it.
    - `fail` records `error` and puts a job running under `job.lease` back to pending
      until `retry_at`; `dead_letter` records `error` and makes it dead. Both are no-ops
      (False) when the job is not held under that lease any more.
    - `list_dead` returns dead jobs, newest failure first, `limit` at most, those with an
      id below `before_id` when given (paging). `retry_dead` puts one dead job back to
      pending, due at `now`, with its attempts reset; False when it is not dead.
    - `purge_finished` deletes done jobs finished before `before` and returns how many
      went. Dead jobs are kept until retried or handled by hand.
    - `get` returns the job's status and attempts (tests, tools); None when unknown.
    """

    @abstractmethod
    async def add(
        self, name: str, payload: JobPayload, *, idempotency_key: str, now: datetime
    ) -> bool: ...

    @abstractmethod
    async def claim(self, now: datetime, *, limit: int, lease_seconds: float) -> list[Job]: ...

    @abstractmethod
    async def start(self, job: Job, now: datetime, *, lease_seconds: float) -> Job | None: ...

    @abstractmethod
    async def extend(self, job: Job, now: datetime, *, lease_seconds: float) -> bool: ...

    @abstractmethod
    async def complete(self, job: Job, now: datetime) -> bool: ...

    @abstractmethod
    async def fail(self, job: Job, now: datetime, *, error: str, retry_at: datetime) -> bool: ...

    @abstractmethod
    async def dead_letter(self, job: Job, now: datetime, *, error: str) -> bool: ...

    @abstractmethod
    async def list_dead(
        self, *, limit: int = 100, before_id: int | None = None
    ) -> list[DeadJob]: ...

    @abstractmethod
    async def retry_dead(self, job_id: int, now: datetime) -> bool: ...

    @abstractmethod
    async def purge_finished(self, before: datetime) -> int: ...

    @abstractmethod
    async def get(self, job_id: int) -> JobState | None: ...


class JobDispatcher(Protocol):
    """Hands claimed jobs to a runner (a local task pool, or a broker such as Celery's).

    Contract:
    - `dispatch` returns once the runner has accepted the job (queued locally, or
      published and confirmed by the broker); it does not wait for the job to run. It
      raises `UnavailableError` when the runner cannot take it (broker down or slow:
      every call is bounded by a timeout). The job then stays claimed until its lease
      expires and the relay hands it out again, so nothing is lost.
    - Delivery is at least once: a runner may receive a job twice (broker redelivery,
      a lease that expired while the job was queued); `Outbox.start` turns the extra
      copies into no-ops.
    - `capacity` is how many more jobs the runner takes right now, or None when a
      broker queues any number.
    """

    @abstractmethod
    async def dispatch(self, job: Job) -> None: ...

    @abstractmethod
    def capacity(self) -> int | None: ...


class LocalJobQueue(JobDispatcher, Protocol):
    """A `JobDispatcher` whose runner is this process's own tasks: a bounded local queue.

    Contract, besides `JobDispatcher`'s: `next_job` waits for the next dispatched job and
    counts it as running until `job_finished`; `capacity` counts queued and running jobs
    against the queue's slots; `idle` is True when nothing is queued or running, and
    `wait_idle` returns once every job dispatched so far has finished.
    """

    @abstractmethod
    async def next_job(self) -> Job: ...

    @abstractmethod
    def job_finished(self) -> None: ...

    @property
    @abstractmethod
    def idle(self) -> bool: ...

    @abstractmethod
    async def wait_idle(self) -> None: ...


JobHandler = Callable[[Job], Awaitable[None]]
"""A plain async function that does a job's work by calling core services.

It must be idempotent under `job.idempotency_key`: a job can run more than once when a
worker dies after the work but before the job is marked done. Raising any exception
fails the attempt (it is retried with backoff, then dead-lettered); raising
`PermanentJobError` skips the remaining retries.
"""


class PermanentJobError(Exception):
    """A job failure that retrying cannot fix (bad payload, missing template...)."""


def error_text(error: BaseException) -> str:
    """What the outbox keeps of a failure: the type and message, bounded in length."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:MAX_ERROR_LENGTH]

"""The outbox in memory: the job queue of the in-memory unit of work, its relay side, and
the in-process dispatcher that hands jobs to this process's own runner tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.memory.transaction import PendingWrites
from core.platform.jobs import (
    DeadJob,
    Job,
    JobPayload,
    JobQueue,
    JobState,
    JobStatus,
    LocalJobQueue,
    Outbox,
    check_job,
)
from core.shared.clock import Clock
from core.shared.errors import UnavailableError

_LEASED = (JobStatus.CLAIMED, JobStatus.RUNNING)


class _UtcClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class _Row:
    id: int
    name: str
    idempotency_key: str
    payload: dict[str, Any]
    available_at: datetime
    created_at: datetime
    status: JobStatus = JobStatus.PENDING
    attempts: int = 0
    lease: int = 0
    locked_until: datetime | None = None
    last_error: str | None = None
    finished_at: datetime | None = None

    def job(self) -> Job:
        return Job(
            id=self.id,
            name=self.name,
            payload=dict(self.payload),
            idempotency_key=self.idempotency_key,
            attempts=self.attempts,
            created_at=self.created_at,
            lease=self.lease,
        )

    def state(self) -> JobState:
        return JobState(
            id=self.id,
            name=self.name,
            idempotency_key=self.idempotency_key,
            status=self.status,
            attempts=self.attempts,
            lease=self.lease,
            available_at=self.available_at,
            locked_until=self.locked_until,
            last_error=self.last_error,
            finished_at=self.finished_at,
        )

    def held(self, job: Job, status: JobStatus) -> bool:
        return self.status is status and self.lease == job.lease


class InMemoryJobStore:
    """The committed jobs of one process: shared by every in-memory unit of work (through
    their `InMemoryJobQueue`) and the `InMemoryOutbox`.

    `clock` dates enqueued jobs (the relay must use the same clock); `on_commit` is
    called after a commit that enqueued jobs, so an in-process relay can wake up at once.
    Methods here are synchronous and never await, so each is atomic on the event loop.
    """

    def __init__(
        self, clock: Clock | None = None, on_commit: Callable[[], None] | None = None
    ) -> None:
        self.clock: Clock = clock or _UtcClock()
        self.on_commit = on_commit
        self.rows: dict[int, _Row] = {}
        self._by_key: dict[tuple[str, str], int] = {}
        self._next_id = 1

    def insert(
        self, name: str, payload: dict[str, Any], key: str, available_at: datetime, now: datetime
    ) -> bool:
        if (name, key) in self._by_key:
            return False
        row = _Row(self._next_id, name, key, payload, available_at=available_at, created_at=now)
        self._next_id += 1
        self.rows[row.id] = row
        self._by_key[(name, key)] = row.id
        return True

    def delete(self, row: _Row) -> None:
        del self.rows[row.id]
        del self._by_key[(row.name, row.idempotency_key)]


class InMemoryJobQueue(JobQueue, PendingWrites):
    """`JobQueue` of the in-memory unit of work (see the port for the contract).

    Jobs wait in the transaction until the unit of work calls `_commit` (then they join
    the store; a (name, key) already there is skipped) or `_rollback` (they vanish).
    """

    def __init__(self, store: InMemoryJobStore) -> None:
        self._store = store
        self._pending: dict[tuple[str, str], tuple[dict[str, Any], datetime]] = {}

    async def enqueue(
        self,
        name: str,
        payload: JobPayload,
        *,
        idempotency_key: str,
        delay_seconds: float = 0,
    ) -> None:
        data = check_job(name, payload, idempotency_key)
        available_at = self._store.clock.now() + timedelta(seconds=max(delay_seconds, 0))
        self._pending.setdefault((name, idempotency_key), (data, available_at))

    def _commit(self) -> None:
        """Apply the pending jobs; cannot fail (duplicates are skipped, as in SQL)."""
        if not self._pending:
            return
        now = self._store.clock.now()
        for (name, key), (payload, available_at) in self._pending.items():
            self._store.insert(name, payload, key, available_at, now)
        self._pending.clear()
        if self._store.on_commit is not None:
            self._store.on_commit()

    def _rollback(self) -> None:
        self._pending.clear()


class InMemoryOutbox(Outbox):
    """`Outbox` over an `InMemoryJobStore` (see the port for the contract)."""

    def __init__(self, store: InMemoryJobStore) -> None:
        self._store = store

    async def add(
        self, name: str, payload: JobPayload, *, idempotency_key: str, now: datetime
    ) -> bool:
        data = check_job(name, payload, idempotency_key)
        return self._store.insert(name, data, idempotency_key, now, now)

    async def claim(self, now: datetime, *, limit: int, lease_seconds: float) -> list[Job]:
        def due(row: _Row) -> bool:
            if row.status is JobStatus.PENDING:
                return row.available_at <= now
            expiry = row.locked_until
            return row.status in _LEASED and expiry is not None and expiry <= now

        rows = sorted(
            (row for row in self._store.rows.values() if due(row)),
            key=lambda row: (row.available_at, row.id),
        )[:limit]
        for row in rows:
            if row.status is not JobStatus.PENDING:
                row.last_error = "lease expired: the runner was lost"
            row.status = JobStatus.CLAIMED
            row.lease += 1
            row.locked_until = now + timedelta(seconds=lease_seconds)
        return [row.job() for row in rows]

    async def start(self, job: Job, now: datetime, *, lease_seconds: float) -> Job | None:
        row = self._store.rows.get(job.id)
        if row is None or not row.held(job, JobStatus.CLAIMED):
            return None
        row.status = JobStatus.RUNNING
        row.attempts += 1
        row.locked_until = now + timedelta(seconds=lease_seconds)
        return row.job()

    async def extend(self, job: Job, now: datetime, *, lease_seconds: float) -> bool:
        row = self._store.rows.get(job.id)
        if row is None or not row.held(job, JobStatus.RUNNING):
            return False
        row.locked_until = now + timedelta(seconds=lease_seconds)
        return True

    async def complete(self, job: Job, now: datetime) -> bool:
        row = self._store.rows.get(job.id)
        if row is None or row.status in (JobStatus.DONE, JobStatus.DEAD):
            return False
        row.status = JobStatus.DONE
        row.locked_until = None
        row.finished_at = now
        return True

    async def fail(self, job: Job, now: datetime, *, error: str, retry_at: datetime) -> bool:
        row = self._store.rows.get(job.id)
        if row is None or not row.held(job, JobStatus.RUNNING):
            return False
        row.status = JobStatus.PENDING
        row.available_at = retry_at
        row.locked_until = None
        row.last_error = error
        return True

    async def dead_letter(self, job: Job, now: datetime, *, error: str) -> bool:
        row = self._store.rows.get(job.id)
        if row is None or not row.held(job, JobStatus.RUNNING):
            return False
        row.status = JobStatus.DEAD
        row.locked_until = None
        row.last_error = error
        row.finished_at = now
        return True

    async def list_dead(self, *, limit: int = 100, before_id: int | None = None) -> list[DeadJob]:
        rows = [
            row
            for row in self._store.rows.values()
            if row.status is JobStatus.DEAD and (before_id is None or row.id < before_id)
        ]
        rows.sort(key=lambda row: (row.finished_at, row.id), reverse=True)
        return [
            DeadJob(
                id=row.id,
                name=row.name,
                payload=dict(row.payload),
                idempotency_key=row.idempotency_key,
                attempts=row.attempts,
                last_error=row.last_error or "",
                failed_at=row.finished_at or row.created_at,
                created_at=row.created_at,
            )
            for row in rows[:limit]
        ]

    async def retry_dead(self, job_id: int, now: datetime) -> bool:
        row = self._store.rows.get(job_id)
        if row is None or row.status is not JobStatus.DEAD:
            return False
        row.status = JobStatus.PENDING
        row.attempts = 0
        row.available_at = now
        row.finished_at = None
        return True

    async def purge_finished(self, before: datetime) -> int:
        old = [
            row
            for row in self._store.rows.values()
            if row.status is JobStatus.DONE and (row.finished_at or before) < before
        ]
        for row in old:
            self._store.delete(row)
        return len(old)

    async def get(self, job_id: int) -> JobState | None:
        row = self._store.rows.get(job_id)
        return None if row is None else row.state()


class InProcessJobDispatcher(LocalJobQueue):
    """`JobDispatcher` for the in-process runner: a bounded local queue.

    The relay puts claimed jobs here (never more than `capacity()`); this process's
    runner tasks take them with `next_job()` and report `job_finished()` after each.
    `capacity` counts queued and running jobs against `slots`, so the relay claims only
    what will start soon and leases do not tick away in a queue.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("the in-process runner needs at least one slot")
        self._slots = slots
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._running = 0

    async def dispatch(self, job: Job) -> None:
        if self.capacity() <= 0:
            raise UnavailableError("The in-process job runner is full.", dependency="jobs")
        self._queue.put_nowait(job)

    def capacity(self) -> int:
        return self._slots - self._queue.qsize() - self._running

    async def next_job(self) -> Job:
        job = await self._queue.get()
        self._running += 1
        return job

    def job_finished(self) -> None:
        self._running -= 1
        self._queue.task_done()

    @property
    def idle(self) -> bool:
        return self._queue.qsize() == 0 and self._running == 0

    async def wait_idle(self) -> None:
        """Wait until every job handed over so far has finished."""
        await self._queue.join()

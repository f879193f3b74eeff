"""Periodic jobs, the dead letters, and keeping the outbox small."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from core.platform.errors import JobNotFoundError
from core.platform.job_policy import JobPolicy
from core.platform.jobs import DeadJob, Job, Outbox, check_job
from core.shared.clock import Clock

PURGE_JOBS_JOB = "platform.purge_jobs"


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """A job enqueued once every `every_seconds` (its period), whoever asks.

    The idempotency key names the period (`periodic:<number>`), so however many
    schedulers (a Celery beat, several in-process runners) ask in one period, the outbox
    holds one job for it.
    """

    name: str
    every_seconds: int
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.every_seconds < 1:
            raise ValueError("a periodic job needs a period of at least one second")
        check_job(self.name, self.payload, "periodic")

    def period(self, timestamp: float) -> int:
        return int(timestamp // self.every_seconds)

    def idempotency_key(self, timestamp: float) -> str:
        return f"periodic:{self.period(timestamp)}"


class JobAdminService:
    """Operating the job system.

    - `enqueue_periodic` adds the job of the current period of a periodic job (a no-op
      when that period's job exists).
    - Dead letters are listed newest first; retrying one makes it pending and due now
      with a fresh retry budget. Retrying a job that is not dead is `JobNotFoundError`.
    - Done jobs are purged `keep_done_seconds` (policy) after they finished, by the
      periodic `PURGE_JOBS_JOB`; until then their idempotency keys keep duplicates out.
      Dead jobs are never purged automatically.
    """

    def __init__(self, outbox: Outbox, clock: Clock, policy: JobPolicy) -> None:
        self._outbox = outbox
        self._clock = clock
        self._policy = policy

    async def enqueue_periodic(self, job: PeriodicJob) -> bool:
        now = self._clock.now()
        return await self._outbox.add(
            job.name,
            job.payload,
            idempotency_key=job.idempotency_key(now.timestamp()),
            now=now,
        )

    async def list_dead(self, *, limit: int = 100, before_id: int | None = None) -> list[DeadJob]:
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        return await self._outbox.list_dead(limit=limit, before_id=before_id)

    async def retry_dead(self, job_id: int) -> None:
        if not await self._outbox.retry_dead(job_id, self._clock.now()):
            raise JobNotFoundError()

    async def purge_finished(self, keep_seconds: float | None = None) -> int:
        keep = self._policy.keep_done_seconds if keep_seconds is None else keep_seconds
        return await self._outbox.purge_finished(self._clock.now() - timedelta(seconds=keep))

    async def handle_purge_jobs(self, _job: Job) -> None:
        """`PURGE_JOBS_JOB`: purge the done jobs older than the policy keeps."""
        await self.purge_finished()

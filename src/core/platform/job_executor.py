"""Running one job: the handler, then done, a retry with backoff, or the dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.platform.job_policy import JobPolicy
from core.platform.jobs import (
    Job,
    JobHandler,
    Outbox,
    PermanentJobError,
    error_text,
)
from core.shared.clock import Clock
from core.shared.errors import UnavailableError


class JobOutcome(StrEnum):
    DONE = "done"
    RETRY = "retry"  # failed; back to pending until `retry_at`
    DEAD = "dead"  # moved to the dead letters
    SKIPPED = "skipped"  # a stale or duplicate copy: someone else has (or had) the job
    FENCED = "fenced"  # ran, but lost its lease meanwhile, so its failure was not recorded


@dataclass(frozen=True, slots=True)
class JobResult:
    """What became of one delivery of a job (for the runner's logs and for tests)."""

    job: Job
    outcome: JobOutcome
    error: str | None = None
    retry_at: datetime | None = None


class JobExecutor:
    """Runs a delivered job through the handler registered under its name.

    Rules:
    - A delivery runs only if `Outbox.start` accepts it (the job is claimed under this
      delivery's lease); any other copy is SKIPPED. So a job is never run twice for one
      claim, and never after it is done or dead.
    - A job whose name has no handler goes to the dead letters at once: no retry can make
      a handler appear (after a deploy that adds one, retry it from the CLI).
    - A run that starts with more attempts than `max_attempts` (the previous runner died
      during the last allowed run) goes to the dead letters without running.
    - The handler runs at most `timeout_seconds`; meanwhile a heartbeat renews the lease.
    - Success marks the job done. `PermanentJobError` sends it to the dead letters. Any
      other error schedules a retry after the policy's backoff, or, after the last
      attempt, sends it to the dead letters.
    - If the outbox cannot be reached to record the result, the error propagates: the
      job's lease then expires and the relay hands it out again (handlers are idempotent).
    """

    def __init__(
        self,
        outbox: Outbox,
        handlers: Mapping[str, JobHandler],
        clock: Clock,
        policy: JobPolicy,
        *,
        random_fraction: Callable[[], float] = random.random,  # jitter, not crypto
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._outbox = outbox
        self._handlers = dict(handlers)
        self._clock = clock
        self._policy = policy
        self._random = random_fraction
        self._sleep = sleep

    @property
    def job_names(self) -> frozenset[str]:
        return frozenset(self._handlers)

    async def execute(self, job: Job) -> JobResult:
        policy = self._policy
        started = await self._outbox.start(
            job, self._clock.now(), lease_seconds=policy.lease_seconds
        )
        if started is None:
            return JobResult(job, JobOutcome.SKIPPED)
        if started.attempts > policy.max_attempts:
            error = f"gave up: the runner was lost during attempt {started.attempts - 1}"
            return await self._dead(started, error)
        handler = self._handlers.get(started.name)
        if handler is None:
            return await self._dead(started, f"no handler for job {started.name!r}")
        deadline = asyncio.timeout(policy.timeout_seconds)
        try:
            async with self._heartbeat(started), deadline:
                await handler(started)
        except PermanentJobError as exc:
            return await self._dead(started, error_text(exc))
        except Exception as exc:
            if deadline.expired():
                return await self._failed(started, f"timed out after {policy.timeout_seconds:g}s")
            return await self._failed(started, error_text(exc))
        await self._outbox.complete(started, self._clock.now())
        return JobResult(started, JobOutcome.DONE)

    async def _failed(self, job: Job, error: str) -> JobResult:
        if job.attempts >= self._policy.max_attempts:
            return await self._dead(job, error)
        now = self._clock.now()
        delay = self._policy.backoff_seconds(job.attempts, self._random())
        retry_at = now + timedelta(seconds=delay)
        if not await self._outbox.fail(job, now, error=error, retry_at=retry_at):
            return JobResult(job, JobOutcome.FENCED, error)
        return JobResult(job, JobOutcome.RETRY, error, retry_at)

    async def _dead(self, job: Job, error: str) -> JobResult:
        if not await self._outbox.dead_letter(job, self._clock.now(), error=error):
            return JobResult(job, JobOutcome.FENCED, error)
        return JobResult(job, JobOutcome.DEAD, error)

    @contextlib.asynccontextmanager
    async def _heartbeat(self, job: Job) -> AsyncIterator[None]:
        task = asyncio.create_task(self._renew(job))
        try:
            yield
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Ours to swallow only if we are not being cancelled ourselves.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def _renew(self, job: Job) -> None:
        while True:
            await self._sleep(self._policy.heartbeat_seconds)
            try:
                held = await self._outbox.extend(
                    job, self._clock.now(), lease_seconds=self._policy.lease_seconds
                )
            except UnavailableError:
                continue  # a blip: the lease has two more beats before it expires
            if not held:
                return  # fenced off: the run goes on, but its failure will not count

"""Running background jobs in one process: the relay loop, the local runners, the drain.

Which loops run is the deployment's choice (`JobRunner.start`):

- inline (embedded profile, tests): a relay loop claims due jobs when a commit in this
  process wakes it, or every `poll_interval_seconds`, and hands them to the local queue;
  `runner_concurrency` runner tasks execute them. The relay loop also enqueues the
  periodic jobs.
- broker (Celery in production): only the relay loop runs here, publishing due jobs
  right after the commits that made them; workers call `run_job` for each delivery, and
  a scheduler calls `relay_once` (the sweep) and `enqueue_periodic`.

Both execute a job through the same `JobExecutor` and handler, so a handler behaves the
same in tests and in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from core.platform.job_admin import JobAdminService, PeriodicJob
from core.platform.job_executor import JobExecutor, JobOutcome, JobResult
from core.platform.job_policy import JobPolicy
from core.platform.job_relay import JobRelay, RelayRound
from core.platform.jobs import Job, JobDispatcher, JobHandler, LocalJobQueue, Outbox
from core.platform.telemetry import Telemetry
from core.shared.clock import Clock
from core.shared.errors import UnavailableError

logger = logging.getLogger("portico.jobs")

STOP_TIMEOUT_SECONDS = 10.0


class JobWakeup:
    """Set by every commit in this process that enqueued jobs; wakes the relay at once."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def take(self) -> bool:
        """True (once) when a commit enqueued jobs since the last call."""
        pending = self._event.is_set()
        self._event.clear()
        return pending

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109  (a poll interval)
        # `asyncio.timeout`, not `wait_for`: on 3.11, wait_for can swallow a cancel that
        # arrives as the event is set, and a loop waiting here would never end.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()


class JobRunner:
    """This process's side of background jobs.

    - `run_job` executes one delivered job (every runner ends here), logs the result
      and reports it (`Telemetry.job_finished`: name, outcome, duration).
    - `relay_once` runs one relay round (the broker's sweep calls it).
    - `drain` runs every due job in the calling task until none is left (tests).
    - `start` starts the relay loop and/or the local runner tasks; `aclose` stops them.
    Periodic jobs need a handler each: a missing one is a `ValueError` at construction.
    """

    def __init__(
        self,
        *,
        outbox: Outbox,
        dispatcher: JobDispatcher,
        local: LocalJobQueue | None,
        clock: Clock,
        policy: JobPolicy,
        wakeup: JobWakeup,
        admin: JobAdminService,
        handlers: Mapping[str, JobHandler],
        telemetry: Telemetry,
        periodic: Sequence[PeriodicJob] = (),
    ) -> None:
        missing = sorted(job.name for job in periodic if job.name not in handlers)
        if missing:
            raise ValueError(f"periodic jobs without a handler: {', '.join(missing)}")
        self.outbox = outbox
        self.policy = policy
        self.relay = JobRelay(outbox, dispatcher, clock, policy)
        self.admin = admin
        self.executor = JobExecutor(outbox, handlers, clock, policy)
        self.periodic = {job.name: job for job in periodic}
        self._clock = clock
        self._telemetry = telemetry
        self._wakeup = wakeup
        self._local = local
        self._tasks: list[asyncio.Task[None]] = []
        self._periods: dict[str, int] = {}
        # Held by a relay round from claim to hand-over, and by `drain` while it claims
        # and looks at the runner: otherwise `drain` could see "nothing due, runner idle"
        # between the relay's claim and its dispatch, and return before a job ran.
        self._relay_lock = asyncio.Lock()

    def start(self, *, relay: bool, runners: bool) -> None:
        """Start the relay loop and/or the local runner tasks on the running loop."""
        if runners:
            if self._local is None:
                raise RuntimeError("the local runners need a local job queue")
            for number in range(self.policy.runner_concurrency):
                self._spawn(self._run_local(self._local), f"portico-job-runner-{number}")
        if relay:
            # Periodic jobs start with the next period, not at every process start.
            now = self._clock.now().timestamp()
            self._periods = {job.name: job.period(now) for job in self.periodic.values()}
            self._spawn(self._relay_loop(enqueue_periodic=runners), "portico-job-relay")

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def run_job(self, job: Job) -> JobResult:
        started = time.perf_counter()
        result = await self.executor.execute(job)
        seconds = time.perf_counter() - started
        self._telemetry.job_finished(job.name, result.outcome.value, seconds)
        _log_result(result)
        return result

    async def relay_once(self) -> RelayRound:
        async with self._relay_lock:
            round_ = await self.relay.relay_once()
        if round_.dispatched < round_.claimed:
            logger.warning(
                "jobs_dispatch_unavailable",
                extra={
                    "claimed": round_.claimed,
                    "dispatched": round_.dispatched,
                    "detail": "the rest go out again when their lease expires",
                },
            )
        return round_

    def take_wakeup(self) -> bool:
        """True (once) when a commit in this process enqueued jobs since the last call."""
        return self._wakeup.take()

    async def enqueue_periodic(self, name: str) -> bool:
        return await self.admin.enqueue_periodic(self.periodic[name])

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  (bounds the whole drain)
        """Run due jobs here until none is due and the local runners are idle.

        Jobs enqueued by the jobs themselves are run too; jobs waiting for a retry time
        in the future are not due. Raises `TimeoutError` after `timeout` seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                async with self._relay_lock:
                    jobs = await self.outbox.claim(
                        self._clock.now(),
                        limit=self.policy.batch_size,
                        lease_seconds=self.policy.lease_seconds,
                    )
                    # Under the lock too: a relay round is either over (its jobs are in
                    # the local queue) or not begun (its jobs were claimed just above).
                    local = self._local
                    idle = local is None or local.idle
                for job in jobs:
                    await self.run_job(job)
                if local is not None and not idle:
                    await local.wait_idle()
                    continue
                if not jobs:
                    return

    async def aclose(self) -> None:
        """Stop the loops; a job cut short stays leased and runs again after the lease."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        # Bounded, so a task that will not stop can never hang a process's shutdown.
        _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_SECONDS)
        if pending:
            names = sorted(task.get_name() for task in pending)
            logger.error("jobs_tasks_did_not_stop", extra={"tasks": names})

    async def _relay_loop(self, *, enqueue_periodic: bool) -> None:
        poll = self.policy.poll_interval_seconds
        while True:
            self._wakeup.take()
            more = False
            try:
                more = (await self.relay_once()).more_waiting
                if enqueue_periodic:
                    await self._enqueue_due_periodic()
            except UnavailableError:
                logger.warning("jobs_relay_unavailable", extra={"dependency": "database"})
            except Exception as exc:
                # The loop must outlive any one failure; the error type is enough here.
                logger.error("jobs_relay_failed", extra={"error": type(exc).__name__})
            if more:
                continue
            await self._wakeup.wait(poll)

    async def _enqueue_due_periodic(self) -> None:
        now = self._clock.now().timestamp()
        for job in self.periodic.values():
            period = job.period(now)
            if self._periods.get(job.name) != period:
                await self.admin.enqueue_periodic(job)
                self._periods[job.name] = period

    async def _run_local(self, local: LocalJobQueue) -> None:
        while True:
            job = await local.next_job()
            try:
                await self.run_job(job)
            except UnavailableError:
                logger.warning("job_outcome_unrecorded", extra={"job_id": job.id, "job": job.name})
            except Exception as exc:
                fields = {"job_id": job.id, "job": job.name, "error": type(exc).__name__}
                logger.error("job_runner_failed", extra=fields)
            finally:
                local.job_finished()
                # A slot is free: let the relay claim the next job now.
                self._wakeup.set()


def _log_result(result: JobResult) -> None:
    job = result.job
    fields: dict[str, Any] = {"job_id": job.id, "job": job.name, "attempt": job.attempts}
    if result.outcome is JobOutcome.DONE:
        logger.info("job_done", extra=fields)
    elif result.outcome is JobOutcome.RETRY:
        retry_at = result.retry_at.isoformat() if result.retry_at else None
        error = _error_type(result.error)
        logger.warning("job_retry", extra={**fields, "retry_at": retry_at, "error": error})
    elif result.outcome is JobOutcome.DEAD:
        logger.error("job_dead", extra={**fields, "error": _error_type(result.error)})
    else:
        logger.info(f"job_{result.outcome.value}", extra=fields)


def _error_type(error: str | None) -> str | None:
    # Logs get the error's type only; the message (which may quote user data) stays in
    # the outbox, where `portico jobs dead` shows it to operators.
    return error.split(":", 1)[0] if error else None

"""Background jobs in one process: the handler registry, periodic jobs and the runners.

Which runner runs jobs is `PORTICO_JOBS__RUNNER`:

- `inline` (default; embedded profile and tests): `start_runtime` starts, on this
  process's event loop, a relay loop (it claims due jobs when a commit wakes it or every
  `poll_interval_seconds`) and `concurrency` runner tasks that execute what it claims.
  The same loop enqueues the periodic jobs below.
- `celery` (production): `start_runtime` starts only the relay loop, which publishes due
  jobs to the broker right after the commits that made them (HTTP processes; turn it off
  with `PORTICO_JOBS__RELAY=false`). Celery workers (`entrypoints.worker`) execute them.
  Celery beat runs the relay on a worker every `sweep_interval_seconds` (the sweep: jobs
  enqueued where no relay runs, retries that came due, leases that expired) and enqueues
  the periodic jobs.

Both runners execute a job through the same `JobExecutor` and handler, so a handler
behaves the same in tests and in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from adapters.memory.jobs import InProcessJobDispatcher
from core.identity.one_time_tokens import PURGE_EXPIRED_TOKENS_JOB
from core.identity.recovery import SEND_PASSWORD_RESET_JOB
from core.identity.verification import SEND_VERIFICATION_EMAIL_JOB
from core.notifications.service import SEND_EMAIL_JOB
from core.platform.job_admin import PURGE_JOBS_JOB, JobAdminService, PeriodicJob
from core.platform.job_executor import JobExecutor, JobOutcome, JobResult
from core.platform.job_policy import JobPolicy
from core.platform.job_relay import JobRelay, RelayRound
from core.platform.jobs import Job, JobDispatcher, JobHandler, Outbox
from core.shared.clock import Clock
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.settings import JobSettings

if TYPE_CHECKING:
    from entrypoints.bootstrap.runtime import Runtime

log = structlog.get_logger("portico.jobs")

STOP_TIMEOUT_SECONDS = 10.0


# --- Periodic jobs: one line each (the name needs a handler below). ------------------
# Celery beat enqueues them in production (entrypoints/worker/beat.py reads this list);
# the inline runner enqueues them itself. One job per period, however many schedulers.
PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob(PURGE_JOBS_JOB, every_seconds=3600),
    PeriodicJob(PURGE_EXPIRED_TOKENS_JOB, every_seconds=3600),
)


def build_job_handlers(runtime: Runtime) -> dict[str, JobHandler]:
    """Every job name this deployment can run, and the handler that runs it.

    Add one line per job: `"<context>.<action>": <async function taking a Job>`, usually
    a core service method (`runtime.notifications.handle_send_email`). Handlers must be
    idempotent under the job's idempotency key (see `core.platform.jobs.JobHandler`).
    """
    keep_seconds = runtime.settings.jobs.keep_done_seconds
    return {
        PURGE_JOBS_JOB: _purge_jobs(runtime.jobs.admin, keep_seconds),
        # --- add job handlers below this line ---
        SEND_EMAIL_JOB: runtime.notifications.handle_send_email,
        SEND_VERIFICATION_EMAIL_JOB: runtime.email_verification.handle_send_verification_email,
        SEND_PASSWORD_RESET_JOB: runtime.password_reset.handle_send_password_reset,
        PURGE_EXPIRED_TOKENS_JOB: runtime.identity_tokens.handle_purge_expired_tokens,
    }


def _purge_jobs(admin: JobAdminService, keep_seconds: int) -> JobHandler:
    async def purge(_job: Job) -> None:
        await admin.purge_finished(keep_seconds)

    return purge


def load_extra_handlers(specs: Sequence[str], runtime: Runtime) -> dict[str, JobHandler]:
    """Handlers from `PORTICO_JOBS__EXTRA_HANDLERS` ("package.module:function" each).

    Each function takes the runtime and returns {job name: handler}. A generic extension
    point (plugins; the integration tests register their probe jobs this way); empty in
    a standard deployment. A name already registered is an error, never an override.
    """
    handlers: dict[str, JobHandler] = {}
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        if not module_name or not attribute:
            raise ValueError(f"extra job handlers must be 'module:function', got {spec!r}")
        factory: Callable[[Runtime], Mapping[str, JobHandler]] = getattr(
            importlib.import_module(module_name), attribute
        )
        for name, handler in factory(runtime).items():
            if name in handlers:
                raise ValueError(f"job {name!r} has two handlers")
            handlers[name] = handler
    return handlers


class JobsRuntime:
    """This process's side of background jobs (`runtime.jobs`).

    - `run_job` executes one delivered job (both runners end here) and logs the result.
    - `relay_once` runs one relay round (the Celery sweep task calls it).
    - `drain` runs every due job in the calling task until none is left (tests).
    - `admin` lists and retries dead jobs; `outbox` is the relay-side port.
    The loops started by `start` stop in `aclose`.
    """

    def __init__(
        self,
        *,
        settings: JobSettings,
        outbox: Outbox,
        dispatcher: JobDispatcher,
        clock: Clock,
        policy: JobPolicy,
        wakeup: asyncio.Event,
        local: InProcessJobDispatcher | None,
        periodic: Sequence[PeriodicJob] = PERIODIC_JOBS,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.policy = policy
        self.relay = JobRelay(outbox, dispatcher, clock, policy)
        self.admin = JobAdminService(outbox, clock)
        self.periodic = {job.name: job for job in periodic}
        self._clock = clock
        self._wakeup = wakeup
        self._local = local
        self._executor: JobExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._periods: dict[str, int] = {}
        # Held by a relay round from claim to hand-over, and by `drain` while it claims
        # and looks at the runner: otherwise `drain` could see "nothing due, runner idle"
        # between the relay's claim and its dispatch, and return before a job ran.
        self._relay_lock = asyncio.Lock()

    @property
    def executor(self) -> JobExecutor:
        if self._executor is None:
            raise RuntimeError("job handlers are not registered yet")
        return self._executor

    def use_handlers(self, handlers: Mapping[str, JobHandler]) -> None:
        missing = sorted(name for name in self.periodic if name not in handlers)
        if missing:
            raise ValueError(f"periodic jobs without a handler: {', '.join(missing)}")
        self._executor = JobExecutor(self.outbox, handlers, self._clock, self.policy)

    def start(self, *, relay: bool, runners: bool) -> None:
        """Start the relay loop and/or the inline runner tasks on the running loop."""
        if runners:
            if self._local is None:
                raise RuntimeError("the inline runner needs its local queue")
            for number in range(self.settings.concurrency):
                self._spawn(self._run_local(self._local), f"portico-job-runner-{number}")
        if relay:
            # Periodic jobs start with the next period, not at every process start.
            now = self._clock.now().timestamp()
            self._periods = {job.name: job.period(now) for job in self.periodic.values()}
            self._spawn(self._relay_loop(enqueue_periodic=runners), "portico-job-relay")

    def _spawn(self, coroutine: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def run_job(self, job: Job) -> JobResult:
        result = await self.executor.execute(job)
        _log_result(result)
        return result

    async def relay_once(self) -> RelayRound:
        async with self._relay_lock:
            round_ = await self.relay.relay_once()
        if round_.dispatched < round_.claimed:
            log.warning(
                "jobs_dispatch_unavailable",
                claimed=round_.claimed,
                dispatched=round_.dispatched,
                detail="the rest go out again when their lease expires",
            )
        return round_

    def take_wakeup(self) -> bool:
        """True (once) when a commit in this process enqueued jobs since the last call."""
        pending = self._wakeup.is_set()
        self._wakeup.clear()
        return pending

    async def enqueue_periodic(self, name: str) -> bool:
        return await self.admin.enqueue_periodic(self.periodic[name])

    async def drain(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109  (bounds the whole drain)
        """Run due jobs here until none is due and the inline runner is idle.

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
                    idle = self._local is None or self._local.idle
                for job in jobs:
                    await self.run_job(job)
                if not idle:
                    assert self._local is not None
                    await self._local.wait_idle()
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
            log.error("jobs_tasks_did_not_stop", tasks=sorted(t.get_name() for t in pending))

    async def _relay_loop(self, *, enqueue_periodic: bool) -> None:
        poll = self.settings.poll_interval_seconds
        while True:
            self._wakeup.clear()
            more = False
            try:
                more = (await self.relay_once()).more_waiting
                if enqueue_periodic:
                    await self._enqueue_due_periodic()
            except UnavailableError:
                log.warning("jobs_relay_unavailable", dependency="database")
            except Exception as exc:
                # The loop must outlive any one failure; the error type is enough here.
                log.error("jobs_relay_failed", error=type(exc).__name__)
            if more:
                continue
            # `asyncio.timeout`, not `wait_for`: on 3.11, wait_for can swallow a cancel that
            # arrives as the event is set (aclose sets it), and the loop would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._wakeup.wait()

    async def _enqueue_due_periodic(self) -> None:
        now = self._clock.now().timestamp()
        for job in self.periodic.values():
            period = job.period(now)
            if self._periods.get(job.name) != period:
                await self.admin.enqueue_periodic(job)
                self._periods[job.name] = period

    async def _run_local(self, local: InProcessJobDispatcher) -> None:
        while True:
            job = await local.next_job()
            try:
                await self.run_job(job)
            except UnavailableError:
                log.warning("job_outcome_unrecorded", job_id=job.id, job=job.name)
            except Exception as exc:
                error = type(exc).__name__
                log.error("job_runner_failed", job_id=job.id, job=job.name, error=error)
            finally:
                local.job_finished()
                # A slot is free: let the relay claim the next job now.
                self._wakeup.set()


def _log_result(result: JobResult) -> None:
    job = result.job
    fields = {"job_id": job.id, "job": job.name, "attempt": job.attempts}
    if result.outcome is JobOutcome.DONE:
        log.info("job_done", **fields)
    elif result.outcome is JobOutcome.RETRY:
        retry_at = result.retry_at.isoformat() if result.retry_at else None
        log.warning("job_retry", retry_at=retry_at, error=_error_type(result.error), **fields)
    elif result.outcome is JobOutcome.DEAD:
        log.error("job_dead", error=_error_type(result.error), **fields)
    else:
        log.info(f"job_{result.outcome.value}", **fields)


def _error_type(error: str | None) -> str | None:
    # Logs get the error's type only; the message (which may quote user data) stays in
    # the outbox, where `portico jobs dead` shows it to operators.
    return error.split(":", 1)[0] if error else None


async def start_jobs(
    runtime: Runtime,
    *,
    outbox: Outbox,
    dispatcher: JobDispatcher,
    wakeup: asyncio.Event,
    local: InProcessJobDispatcher | None,
    policy: JobPolicy,
    run_loops: bool,
) -> JobsRuntime:
    """Give `runtime` its `jobs`, register the handlers, start the loops the runner needs."""
    settings = runtime.settings.jobs
    jobs = JobsRuntime(
        settings=settings,
        outbox=outbox,
        dispatcher=dispatcher,
        clock=runtime.clock,
        policy=policy,
        wakeup=wakeup,
        local=local,
    )
    runtime.jobs = jobs
    handlers = build_job_handlers(runtime)
    for name, handler in load_extra_handlers(settings.extra_handlers, runtime).items():
        if name in handlers:
            raise ValueError(f"job {name!r} has two handlers")
        handlers[name] = handler
    jobs.use_handlers(handlers)
    if run_loops:
        inline = settings.runner == "inline"
        jobs.start(relay=inline or settings.relay, runners=inline)
    return jobs

"""The job rules: executor (retries, backoff, dead letters, fencing), relay, admin.

Every port in memory, time from a manual clock; no sockets, no sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from adapters.memory.clock import ManualClock
from adapters.memory.jobs import InMemoryJobStore, InMemoryOutbox, InProcessJobDispatcher
from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from core.platform.errors import JobNotFoundError
from core.platform.job_admin import JobAdminService, PeriodicJob
from core.platform.job_executor import JobExecutor, JobOutcome
from core.platform.job_policy import JobPolicy
from core.platform.job_relay import JobRelay
from core.platform.jobs import (
    Job,
    JobHandler,
    JobStatus,
    PermanentJobError,
    job_from_message,
    job_to_message,
)
from core.shared.errors import UnavailableError

POLICY = JobPolicy(
    max_attempts=3,
    backoff_base_seconds=10,
    backoff_max_seconds=25,
    backoff_jitter=0.5,
    timeout_seconds=60,
    lease_seconds=30,
    batch_size=10,
)


class FakeDispatcher:
    """Records dispatched jobs; can be 'down' or limited in capacity."""

    def __init__(self, capacity: int | None = None, fail_after: int | None = None) -> None:
        self.jobs: list[Job] = []
        self._capacity = capacity
        self.fail_after = fail_after

    async def dispatch(self, job: Job) -> None:
        if self.fail_after is not None and len(self.jobs) >= self.fail_after:
            raise UnavailableError("broker down", dependency="broker")
        self.jobs.append(job)

    def capacity(self) -> int | None:
        return self._capacity


class World:
    def __init__(self, policy: JobPolicy = POLICY) -> None:
        self.clock = ManualClock()
        self.store = InMemoryJobStore(self.clock)
        self.uow = InMemoryUnitOfWorkFactory(jobs=self.store)
        self.outbox = InMemoryOutbox(self.store)
        self.policy = policy
        self.calls: list[Job] = []
        self.handlers: dict[str, JobHandler] = {}
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def executor(self, random_fraction: float = 0.0) -> JobExecutor:
        return JobExecutor(
            self.outbox,
            self.handlers,
            self.clock,
            self.policy,
            random_fraction=lambda: random_fraction,
            sleep=self.sleep,
        )

    def handler(self, name: str, effect: Callable[[Job], Awaitable[None]] | None = None) -> None:
        async def handle(job: Job) -> None:
            self.calls.append(job)
            if effect is not None:
                await effect(job)

        self.handlers[name] = handle

    async def enqueue(self, name: str, key: str = "k", *, commit: bool = True) -> None:
        async with self.uow() as tx:
            await tx.jobs.enqueue(name, {"key": key}, idempotency_key=key)
            if commit:
                await tx.commit()

    async def claim(self) -> list[Job]:
        return await self.outbox.claim(
            self.clock.now(), limit=10, lease_seconds=self.policy.lease_seconds
        )

    async def status(self, job_id: int) -> JobStatus:
        state = await self.outbox.get(job_id)
        assert state is not None
        return state.status


async def fail(_job: Job) -> None:
    raise RuntimeError("smtp said no")


# --- policy ------------------------------------------------------------------------


def test_backoff_doubles_is_capped_and_jitter_only_shortens() -> None:
    policy = JobPolicy(backoff_base_seconds=2, backoff_max_seconds=20, backoff_jitter=0.25)
    assert [policy.backoff_seconds(n, 0.0) for n in (1, 2, 3, 4, 5, 50)] == [2, 4, 8, 16, 20, 20]
    assert policy.backoff_seconds(3, 0.999) == pytest.approx(8 * (1 - 0.25 * 0.999))
    assert policy.backoff_seconds(10**9, 0.0) == 20  # no overflow
    assert policy.heartbeat_seconds == policy.lease_seconds / 3


@pytest.mark.parametrize(
    "values",
    [
        {"max_attempts": 0},
        {"backoff_base_seconds": 0},
        {"backoff_base_seconds": 10, "backoff_max_seconds": 5},
        {"backoff_jitter": 1.5},
        {"lease_seconds": 0},
    ],
)
def test_a_policy_refuses_nonsense(values: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        JobPolicy(**values)  # type: ignore[arg-type]


def test_a_job_survives_the_trip_through_a_message() -> None:
    job = Job(7, "mail.send", {"to": "a@b.c"}, "key", attempts=2, lease=3)
    assert job_from_message(job_to_message(job)) == job
    with pytest.raises(ValueError):
        job_from_message({"id": 1, "name": "x"})


# --- executor ----------------------------------------------------------------------


async def test_a_successful_run_marks_the_job_done_once() -> None:
    world = World()
    world.handler("mail.send")
    await world.enqueue("mail.send")
    (job,) = await world.claim()
    result = await world.executor().execute(job)
    assert result.outcome is JobOutcome.DONE
    assert [(call.id, call.attempts, call.payload) for call in world.calls] == [
        (job.id, 1, {"key": "k"})
    ]
    assert await world.status(job.id) is JobStatus.DONE
    # A second delivery of the same claim does not run again.
    assert (await world.executor().execute(job)).outcome is JobOutcome.SKIPPED
    assert len(world.calls) == 1


async def test_a_failure_is_retried_after_exponential_backoff_with_jitter() -> None:
    world = World()
    world.handler("mail.send", fail)
    await world.enqueue("mail.send")
    (job,) = await world.claim()
    result = await world.executor(random_fraction=0.5).execute(job)
    assert result.outcome is JobOutcome.RETRY and result.error == "RuntimeError: smtp said no"
    # attempt 1: 10 s, shortened by half the jitter (0.5 * 0.5)
    assert result.retry_at == world.clock.now() + timedelta(seconds=7.5)
    state = await world.outbox.get(job.id)
    assert state is not None and state.status is JobStatus.PENDING
    assert state.last_error == "RuntimeError: smtp said no"
    world.clock.advance(7)
    assert await world.claim() == []
    world.clock.advance(0.5)
    (again,) = await world.claim()
    second = await world.executor().execute(again)
    assert second.outcome is JobOutcome.RETRY
    assert second.retry_at == world.clock.now() + timedelta(seconds=20)  # 10 * 2


async def test_the_last_failed_attempt_sends_the_job_to_the_dead_letters() -> None:
    world = World()
    world.handler("mail.send", fail)
    await world.enqueue("mail.send")
    outcomes = []
    for _ in range(POLICY.max_attempts):
        world.clock.advance(POLICY.backoff_max_seconds)
        (job,) = await world.claim()
        outcomes.append((await world.executor().execute(job)).outcome)
    assert outcomes == [JobOutcome.RETRY, JobOutcome.RETRY, JobOutcome.DEAD]
    assert len(world.calls) == POLICY.max_attempts
    (dead,) = await world.outbox.list_dead()
    assert dead.attempts == POLICY.max_attempts and dead.last_error == "RuntimeError: smtp said no"
    world.clock.advance(3600)
    assert await world.claim() == []


async def test_a_permanent_error_skips_the_remaining_retries() -> None:
    world = World()

    async def bad_payload(_job: Job) -> None:
        raise PermanentJobError("no such template")

    world.handler("mail.send", bad_payload)
    await world.enqueue("mail.send")
    (job,) = await world.claim()
    result = await world.executor().execute(job)
    assert result.outcome is JobOutcome.DEAD
    (dead,) = await world.outbox.list_dead()
    assert (dead.attempts, dead.last_error) == (1, "PermanentJobError: no such template")


async def test_a_job_without_a_handler_goes_to_the_dead_letters_at_once() -> None:
    world = World()
    world.handler("known")
    await world.enqueue("unknown.job")
    (job,) = await world.claim()
    result = await world.executor().execute(job)
    assert result.outcome is JobOutcome.DEAD and world.calls == []
    (dead,) = await world.outbox.list_dead()
    assert dead.last_error == "no handler for job 'unknown.job'"


async def test_a_run_that_overstays_its_timeout_fails() -> None:
    world = World(JobPolicy(max_attempts=2, timeout_seconds=0.01, lease_seconds=30))

    async def hang(_job: Job) -> None:
        await asyncio.Event().wait()

    world.handler("slow", hang)
    await world.enqueue("slow")
    (job,) = await world.claim()
    result = await world.executor().execute(job)
    assert result.outcome is JobOutcome.RETRY and result.error == "timed out after 0.01s"


async def test_a_handlers_own_timeout_error_keeps_its_message() -> None:
    world = World()

    async def refuse(_job: Job) -> None:
        raise TimeoutError("smtp connect")

    world.handler("mail.send", refuse)
    await world.enqueue("mail.send")
    (job,) = await world.claim()
    assert (await world.executor().execute(job)).error == "TimeoutError: smtp connect"


async def test_a_copy_from_an_older_claim_is_skipped() -> None:
    world = World()
    world.handler("mail.send")
    await world.enqueue("mail.send")
    (stale,) = await world.claim()
    world.clock.advance(POLICY.lease_seconds)  # the first copy was lost in the broker
    (fresh,) = await world.claim()
    assert (await world.executor().execute(stale)).outcome is JobOutcome.SKIPPED
    assert (await world.executor().execute(fresh)).outcome is JobOutcome.DONE
    assert [call.lease for call in world.calls] == [fresh.lease]


async def test_a_job_whose_runner_died_on_its_last_attempt_is_not_run_again() -> None:
    world = World()
    world.handler("crashy")
    await world.enqueue("crashy")
    for _ in range(POLICY.max_attempts):
        (job,) = await world.claim()
        # The runner starts the job and dies: the lease runs out.
        assert await world.outbox.start(job, world.clock.now(), lease_seconds=30) is not None
        world.clock.advance(POLICY.lease_seconds)
    (job,) = await world.claim()
    result = await world.executor().execute(job)
    assert result.outcome is JobOutcome.DEAD and world.calls == []
    assert result.error == f"gave up: the runner was lost during attempt {POLICY.max_attempts}"


async def test_the_heartbeat_renews_the_lease_of_a_long_run() -> None:
    world = World()

    async def fake_sleep(seconds: float) -> None:
        # Every heartbeat interval passes at once.
        world.clock.advance(seconds)
        await asyncio.sleep(0)

    world.sleep = fake_sleep
    observed: list[list[Job]] = []

    async def long_run(_job: Job) -> None:
        for _ in range(30):
            await asyncio.sleep(0)  # let the heartbeat beat (no time passes here)
        observed.append(await world.claim())

    world.handler("long", long_run)
    await world.enqueue("long")
    (job,) = await world.claim()
    start = world.clock.now()
    result = await world.executor().execute(job)
    assert world.clock.now() - start > timedelta(seconds=POLICY.lease_seconds * 3)
    assert observed == [[]]  # never up for grabs while it ran
    assert result.outcome is JobOutcome.DONE


async def test_a_runner_that_lost_its_lease_cannot_record_a_failure() -> None:
    world = World()
    fresh: list[Job] = []

    async def slow_then_fail(_job: Job) -> None:
        world.clock.advance(POLICY.lease_seconds)  # no heartbeat got through in time
        fresh.extend(await world.claim())
        raise RuntimeError("late")

    async def never(_seconds: float) -> None:
        await asyncio.Event().wait()

    world.sleep = never
    world.handler("job", slow_then_fail)
    await world.enqueue("job")
    (job,) = await world.claim()
    result = await world.executor().execute(job)
    assert result.outcome is JobOutcome.FENCED
    state = await world.outbox.get(job.id)
    assert state is not None and state.status is JobStatus.CLAIMED
    assert state.lease == fresh[0].lease == job.lease + 1


# --- relay -------------------------------------------------------------------------


async def test_the_relay_hands_committed_due_jobs_to_the_dispatcher() -> None:
    world = World()
    dispatcher = FakeDispatcher()
    relay = JobRelay(world.outbox, dispatcher, world.clock, POLICY)
    await world.enqueue("a", "1")
    await world.enqueue("b", "2", commit=False)  # rolled back: never relayed
    round_ = await relay.relay_once()
    assert (round_.claimed, round_.dispatched, round_.more_waiting) == (1, 1, False)
    assert [job.name for job in dispatcher.jobs] == ["a"]
    assert (await relay.relay_once()).claimed == 0


async def test_the_relay_claims_no_more_than_the_runner_can_take() -> None:
    world = World()
    dispatcher = FakeDispatcher(capacity=2)
    relay = JobRelay(world.outbox, dispatcher, world.clock, POLICY)
    for n in range(3):
        await world.enqueue("a", str(n))
    round_ = await relay.relay_once()
    assert (round_.claimed, round_.limit, round_.more_waiting) == (2, 2, True)
    assert (
        await JobRelay(world.outbox, FakeDispatcher(0), world.clock, POLICY).relay_once()
    ).claimed == 0


async def test_a_broker_outage_leaves_jobs_claimed_until_the_sweep_sends_them_again() -> None:
    world = World()
    dispatcher = FakeDispatcher(fail_after=1)
    relay = JobRelay(world.outbox, dispatcher, world.clock, POLICY)
    for n in range(3):
        await world.enqueue("a", str(n))
        world.clock.advance(1)
    round_ = await relay.relay_once()
    assert (round_.claimed, round_.dispatched, round_.more_waiting) == (3, 1, False)
    dispatcher.fail_after = None
    assert (await relay.relay_once()).claimed == 0  # still leased
    world.clock.advance(POLICY.lease_seconds)
    await relay.relay_once()  # the sweep: leases expired
    assert [job.idempotency_key for job in dispatcher.jobs] == ["0", "0", "1", "2"]
    assert [job.lease for job in dispatcher.jobs] == [1, 2, 2, 2]


async def test_the_relay_resends_a_job_whose_runner_died_mid_run() -> None:
    world = World()
    world.handler("a")
    dispatcher = FakeDispatcher()
    relay = JobRelay(world.outbox, dispatcher, world.clock, POLICY)
    await world.enqueue("a")
    await relay.relay_once()
    (first,) = dispatcher.jobs
    await world.outbox.start(first, world.clock.now(), lease_seconds=30)  # then it dies
    world.clock.advance(POLICY.lease_seconds)
    await relay.relay_once()
    second = dispatcher.jobs[1]
    assert (await world.executor().execute(second)).outcome is JobOutcome.DONE
    assert world.calls[0].attempts == 2


async def test_the_in_process_dispatcher_counts_queued_and_running_jobs() -> None:
    local = InProcessJobDispatcher(2)
    job = Job(1, "a", {}, "k", lease=1)
    await local.dispatch(job)
    assert local.capacity() == 1 and not local.idle
    assert await local.next_job() == job
    await local.dispatch(job)
    assert local.capacity() == 0
    with pytest.raises(UnavailableError):
        await local.dispatch(job)
    local.job_finished()
    assert local.capacity() == 1
    await local.next_job()
    local.job_finished()
    await local.wait_idle()
    assert local.idle and local.capacity() == 2


# --- admin -------------------------------------------------------------------------


async def test_dead_jobs_are_listed_and_retried_with_a_fresh_budget() -> None:
    world = World()
    world.handler("mail.send", fail)
    admin = JobAdminService(world.outbox, world.clock, world.policy)
    await world.enqueue("mail.send")
    (job,) = await world.claim()
    world.policy = JobPolicy(max_attempts=1)
    await world.executor().execute(job)
    (dead,) = await admin.list_dead()
    await admin.retry_dead(dead.id)
    with pytest.raises(JobNotFoundError):
        await admin.retry_dead(dead.id)
    with pytest.raises(ValueError):
        await admin.list_dead(limit=0)
    (again,) = await world.claim()
    assert again.id == dead.id and again.attempts == 0


async def test_a_periodic_job_is_enqueued_once_per_period() -> None:
    world = World()
    admin = JobAdminService(world.outbox, world.clock, world.policy)
    tick = PeriodicJob("platform.tick", every_seconds=60, payload={"n": 1})
    assert await admin.enqueue_periodic(tick)
    assert not await admin.enqueue_periodic(tick)
    world.clock.advance(60)
    assert await admin.enqueue_periodic(tick)
    keys = [job.idempotency_key for job in await world.claim()]
    assert len(keys) == 2 and len(set(keys)) == 2 and all(k.startswith("periodic:") for k in keys)
    with pytest.raises(ValueError):
        PeriodicJob("x", every_seconds=0)


async def test_purge_keeps_recent_done_jobs() -> None:
    world = World()
    world.handler("a")
    admin = JobAdminService(world.outbox, world.clock, world.policy)
    await world.enqueue("a")
    (job,) = await world.claim()
    await world.executor().execute(job)
    world.clock.advance(59)
    assert await admin.purge_finished(keep_seconds=60) == 0
    world.clock.advance(2)
    assert await admin.purge_finished(keep_seconds=60) == 1

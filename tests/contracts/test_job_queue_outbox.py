"""The `JobQueue` and `Outbox` contracts, through the unit of work, on every adapter.

One suite, three backends: in memory, SQLite (a file per test) and Postgres. Time comes
from a manual clock shared by the queue and the outbox, so leases and retries are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.memory.clock import ManualClock
from adapters.memory.jobs import InMemoryJobStore, InMemoryOutbox
from adapters.memory.unit_of_work import InMemoryUnitOfWorkFactory
from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.jobs import SqlAlchemyOutbox
from adapters.sqlalchemy.schema import metadata
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWorkFactory
from core.platform.jobs import Job, JobStatus, Outbox
from tests.databases import create_tables, sqlite_url

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.integration),
]
LEASE = 30.0


@dataclass
class Jobs:
    uow: IdentityUnitOfWorkFactory
    outbox: Outbox
    clock: ManualClock
    committed: list[int]  # one entry per commit that enqueued jobs (the wake-up hook)

    async def enqueue(self, *jobs: tuple[str, str], delay: float = 0, commit: bool = True) -> None:
        async with self.uow() as tx:
            for name, key in jobs:
                await tx.jobs.enqueue(name, {"key": key}, idempotency_key=key, delay_seconds=delay)
            if commit:
                await tx.commit()

    async def claim(self, limit: int = 10) -> list[Job]:
        return await self.outbox.claim(self.clock.now(), limit=limit, lease_seconds=LEASE)

    async def start(self, job: Job) -> Job:
        started = await self.outbox.start(job, self.clock.now(), lease_seconds=LEASE)
        assert started is not None
        return started

    async def status(self, job_id: int) -> JobStatus:
        state = await self.outbox.get(job_id)
        assert state is not None
        return state.status


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    # Sync on purpose: the Postgres fixture runs its own event loop.
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "var" / "portico.db")
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def jobs(backend: str | None) -> AsyncIterator[Jobs]:
    clock = ManualClock()
    committed: list[int] = []

    def hook() -> None:
        committed.append(1)

    if backend is None:
        store = InMemoryJobStore(clock, on_commit=hook)
        yield Jobs(InMemoryUnitOfWorkFactory(jobs=store), InMemoryOutbox(store), clock, committed)
        return
    engine = create_engine(backend, pool_size=6)
    try:
        await create_tables(engine, metadata)
        uow = SqlAlchemyUnitOfWorkFactory(engine, clock=clock, on_jobs_committed=hook)
        yield Jobs(uow, SqlAlchemyOutbox(engine), clock, committed)
    finally:
        await engine.dispose()


async def test_a_committed_job_is_claimed_with_its_payload_and_a_lease(jobs: Jobs) -> None:
    async with jobs.uow() as tx:
        await tx.jobs.enqueue(
            "mail.send", {"to": "ada@example.com", "n": [1, 2.5, None]}, idempotency_key="k1"
        )
        await tx.commit()
    assert jobs.committed == [1]
    (job,) = await jobs.claim()
    assert (job.name, job.idempotency_key, job.payload) == (
        "mail.send",
        "k1",
        {"to": "ada@example.com", "n": [1, 2.5, None]},
    )
    assert job.attempts == 0 and job.lease == 1 and job.created_at == jobs.clock.now()
    state = await jobs.outbox.get(job.id)
    assert state is not None and state.status is JobStatus.CLAIMED
    assert state.locked_until == jobs.clock.now() + timedelta(seconds=LEASE)
    assert await jobs.claim() == []  # claimed: nobody else gets it


async def test_a_rolled_back_or_abandoned_job_never_exists(jobs: Jobs) -> None:
    async with jobs.uow() as tx:
        await tx.jobs.enqueue("mail.send", {}, idempotency_key="rolled-back")
        await tx.rollback()
    await jobs.enqueue(("mail.send", "abandoned"), commit=False)
    with pytest.raises(RuntimeError):
        async with jobs.uow() as tx:
            await tx.jobs.enqueue("mail.send", {}, idempotency_key="failed")
            raise RuntimeError("the request failed")
    assert await jobs.claim() == []
    assert jobs.committed == []
    # The keys were never taken: the same jobs can be enqueued for real.
    await jobs.enqueue(("mail.send", "rolled-back"), ("mail.send", "abandoned"))
    assert len(await jobs.claim()) == 2


async def test_the_same_name_and_key_is_one_job_within_and_across_transactions(
    jobs: Jobs,
) -> None:
    await jobs.enqueue(("mail.send", "k"), ("mail.send", "k"), ("other.job", "k"))
    await jobs.enqueue(("mail.send", "k"))
    claimed = await jobs.claim()
    assert sorted(job.name for job in claimed) == ["mail.send", "other.job"]
    for job in claimed:
        await jobs.outbox.complete(job, jobs.clock.now())
    await jobs.enqueue(("mail.send", "k"))  # done, but remembered until purged
    assert await jobs.claim() == []


async def test_the_outbox_can_add_jobs_outside_a_unit_of_work(jobs: Jobs) -> None:
    now = jobs.clock.now()
    assert await jobs.outbox.add("platform.tick", {"a": 1}, idempotency_key="p1", now=now)
    assert not await jobs.outbox.add("platform.tick", {"a": 2}, idempotency_key="p1", now=now)
    (job,) = await jobs.claim()
    assert job.payload == {"a": 1}


@pytest.mark.parametrize(
    ("name", "payload", "key"),
    [
        ("", {}, "k"),
        ("x" * 101, {}, "k"),
        ("job", {}, ""),
        ("job", {"when": object()}, "k"),
        ("job", {"nan": float("nan")}, "k"),
    ],
)
async def test_bad_jobs_are_refused_at_enqueue(
    jobs: Jobs, name: str, payload: dict[str, object], key: str
) -> None:
    async with jobs.uow() as tx:
        with pytest.raises(ValueError):
            await tx.jobs.enqueue(name, payload, idempotency_key=key)


async def test_a_delayed_job_is_due_only_after_its_delay(jobs: Jobs) -> None:
    await jobs.enqueue(("later", "k"), delay=60)
    assert await jobs.claim() == []
    jobs.clock.advance(59)
    assert await jobs.claim() == []
    jobs.clock.advance(1)
    assert [job.name for job in await jobs.claim()] == ["later"]


async def test_claims_take_the_oldest_first_up_to_the_limit(jobs: Jobs) -> None:
    for n in range(5):
        await jobs.enqueue(("job", f"k{n}"))
        jobs.clock.advance(1)
    first = await jobs.claim(limit=2)
    assert [job.idempotency_key for job in first] == ["k0", "k1"]
    rest = await jobs.claim(limit=10)
    assert [job.idempotency_key for job in rest] == ["k2", "k3", "k4"]


async def test_concurrent_claimers_never_get_the_same_job(jobs: Jobs) -> None:
    await jobs.enqueue(*[("job", f"k{n}") for n in range(20)])
    batches = await asyncio.gather(*(jobs.claim(limit=4) for _ in range(6)))
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == 20 and len(set(ids)) == 20


async def test_start_accepts_one_copy_per_claim_and_counts_the_attempt(jobs: Jobs) -> None:
    await jobs.enqueue(("job", "k"))
    (job,) = await jobs.claim()
    started = await jobs.start(job)
    assert started.attempts == 1 and started.lease == job.lease
    assert await jobs.status(job.id) is JobStatus.RUNNING
    # A duplicate delivery of the same claim is turned away.
    assert await jobs.outbox.start(job, jobs.clock.now(), lease_seconds=LEASE) is None


async def test_an_expired_lease_is_claimed_again_and_fences_off_the_old_holder(
    jobs: Jobs,
) -> None:
    await jobs.enqueue(("job", "claimed"))
    jobs.clock.advance(1)
    await jobs.enqueue(("job", "running"))
    claimed, running = await jobs.claim()
    running = await jobs.start(running)
    jobs.clock.advance(LEASE - 1)
    assert await jobs.claim() == []  # leases still held
    jobs.clock.advance(1)
    again = await jobs.claim()
    assert [(job.id, job.lease) for job in again] == [(claimed.id, 2), (running.id, 2)]
    state = await jobs.outbox.get(running.id)
    assert state is not None and state.last_error and "lease expired" in state.last_error
    # The old holders can no longer move their jobs; the new ones can.
    now = jobs.clock.now()
    assert await jobs.outbox.start(claimed, now, lease_seconds=LEASE) is None
    assert not await jobs.outbox.extend(running, now, lease_seconds=LEASE)
    assert not await jobs.outbox.fail(running, now, error="late", retry_at=now)
    assert not await jobs.outbox.dead_letter(running, now, error="late")
    restarted = await jobs.start(again[1])
    assert restarted.attempts == 2


async def test_a_heartbeat_keeps_a_running_job_leased(jobs: Jobs) -> None:
    await jobs.enqueue(("job", "k"))
    job = await jobs.start((await jobs.claim())[0])
    for _ in range(3):
        jobs.clock.advance(LEASE - 1)
        assert await jobs.outbox.extend(job, jobs.clock.now(), lease_seconds=LEASE)
    assert await jobs.claim() == []
    jobs.clock.advance(LEASE)
    assert len(await jobs.claim()) == 1


async def test_complete_is_idempotent_and_final(jobs: Jobs) -> None:
    await jobs.enqueue(("job", "k"))
    job = await jobs.start((await jobs.claim())[0])
    assert await jobs.outbox.complete(job, jobs.clock.now())
    assert not await jobs.outbox.complete(job, jobs.clock.now())
    assert await jobs.status(job.id) is JobStatus.DONE
    jobs.clock.advance(LEASE * 10)
    assert await jobs.claim() == []
    assert await jobs.outbox.start(job, jobs.clock.now(), lease_seconds=LEASE) is None
    assert not await jobs.outbox.complete(Job(999_999, "job", {}, "x"), jobs.clock.now())


async def test_a_failed_job_waits_for_its_retry_time(jobs: Jobs) -> None:
    await jobs.enqueue(("job", "k"))
    job = await jobs.start((await jobs.claim())[0])
    retry_at = jobs.clock.now() + timedelta(seconds=10)
    assert await jobs.outbox.fail(job, jobs.clock.now(), error="Boom: once", retry_at=retry_at)
    state = await jobs.outbox.get(job.id)
    assert state is not None
    assert (state.status, state.last_error, state.available_at) == (
        JobStatus.PENDING,
        "Boom: once",
        retry_at,
    )
    jobs.clock.advance(9)
    assert await jobs.claim() == []
    jobs.clock.advance(1)
    (again,) = await jobs.claim()
    assert again.attempts == 1 and again.lease == 2


async def test_dead_jobs_are_listed_newest_first_and_can_be_retried(jobs: Jobs) -> None:
    await jobs.enqueue(*[("job", f"k{n}") for n in range(3)])
    claimed = [await jobs.start(job) for job in await jobs.claim()]
    for job in claimed:
        assert await jobs.outbox.dead_letter(job, jobs.clock.now(), error=f"E: {job.id}")
        jobs.clock.advance(1)
    dead = await jobs.outbox.list_dead()
    assert [d.id for d in dead] == [job.id for job in reversed(claimed)]
    newest = dead[0]
    assert newest.attempts == 1 and newest.last_error == f"E: {newest.id}"
    assert newest.payload == {"key": newest.idempotency_key} and newest.name == "job"
    assert newest.failed_at == jobs.clock.now() - timedelta(seconds=1)
    assert [d.id for d in await jobs.outbox.list_dead(limit=1, before_id=newest.id)] == [dead[1].id]
    assert await jobs.claim() == []  # dead jobs are never claimed

    assert await jobs.outbox.retry_dead(newest.id, jobs.clock.now())
    assert not await jobs.outbox.retry_dead(newest.id, jobs.clock.now())  # not dead now
    assert not await jobs.outbox.retry_dead(999_999, jobs.clock.now())
    (retried,) = await jobs.claim()
    assert retried.id == newest.id and retried.attempts == 0
    assert [d.id for d in await jobs.outbox.list_dead()] == [d.id for d in dead[1:]]


async def test_purge_deletes_old_done_jobs_only(jobs: Jobs) -> None:
    await jobs.enqueue(("job", "old"), ("job", "dead"))
    old, dead = [await jobs.start(job) for job in await jobs.claim()]
    await jobs.outbox.complete(old, jobs.clock.now())
    await jobs.outbox.dead_letter(dead, jobs.clock.now(), error="E")
    jobs.clock.advance(3600)
    await jobs.enqueue(("job", "recent"))
    recent = await jobs.start((await jobs.claim())[0])
    await jobs.outbox.complete(recent, jobs.clock.now())
    assert await jobs.outbox.purge_finished(jobs.clock.now() - timedelta(seconds=60)) == 1
    assert await jobs.outbox.get(old.id) is None
    assert await jobs.status(dead.id) is JobStatus.DEAD
    assert await jobs.status(recent.id) is JobStatus.DONE
    # A purged key is free again.
    await jobs.enqueue(("job", "old"))
    assert [job.idempotency_key for job in await jobs.claim()] == ["old"]
    assert await jobs.outbox.get(999_999) is None

"""Jobs on real Celery workers: Redis and RabbitMQ brokers, a killed worker, dead letters.

Each worker is a `celery ... worker --pool=prefork --concurrency=1` subprocess, in a
session of its own (so its pool children can be killed with it), reading this session's
Postgres database and a broker namespace made for the run: a Redis key prefix on the
test database, or a RabbitMQ queue of its own; both are deleted afterwards. The test
process plays the HTTP process: its runtime enqueues jobs and its relay publishes them.
The jobs are the probes of `celery_probes.py`, registered through the documented
extension point `PORTICO_JOBS__EXTRA_HANDLERS`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.celery.config import CeleryOptions
from adapters.celery.dispatcher import CeleryJobDispatcher
from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.schema import metadata
from core.identity.service import AccountService
from core.platform.jobs import Job, JobState, JobStatus
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings
from tests.brokers import Broker, SilentServer, rabbitmq_broker, redis_broker, unique
from tests.databases import create_tables
from tests.integration.celery_probes import DROP_PROBE_TABLES, PROBE_TABLES, plain_dsn
from tests.integration.celery_processes import (
    BIN,
    LEASE_SECONDS,
    WAIT_SECONDS,
    CeleryProcess,
    assert_ran_in_pool_of,
    job_settings,
    process_env,
    running,
    start_worker,
)
from tests.private_servers import free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")


# --- database and brokers ----------------------------------------------------------


@pytest.fixture(scope="module")
def database(postgres_database: str) -> Iterator[str]:
    async def setup() -> None:
        engine = create_engine(postgres_database)
        try:
            await create_tables(engine, metadata)
        finally:
            await engine.dispose()
        await sql(postgres_database, PROBE_TABLES)

    asyncio.run(setup())
    yield postgres_database
    asyncio.run(sql(postgres_database, DROP_PROBE_TABLES))


async def sql(url: str, statement: str, *args: Any) -> Any:
    connection = await asyncpg.connect(plain_dsn(url), timeout=5)
    try:
        if statement.lstrip().upper().startswith("SELECT"):
            return await connection.fetch(statement, *args)
        return await connection.execute(statement, *args)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def redis_worker(
    database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Broker, CeleryProcess]]:
    """One worker on a Redis broker, shared by the tests that do not kill it."""
    with redis_broker(redis_url, "redis") as broker:
        worker = start_worker(
            job_settings(database, broker), tmp_path_factory.mktemp("redis") / "worker.log"
        )
        try:
            yield broker, worker
        finally:
            worker.stop()


@pytest.fixture
async def runtimes() -> AsyncIterator[Callable[..., Awaitable[Runtime]]]:
    """Start runtimes playing the HTTP process (relay included unless relay=False)."""
    started: list[Runtime] = []

    async def start(database_url: str, broker: Broker, *, relay: bool = True) -> Runtime:
        values = job_settings(database_url, broker, relay=relay)
        runtime = await start_runtime(Settings(_env_file=None, **values))  # type: ignore[call-arg]
        started.append(runtime)
        return runtime

    yield start
    for runtime in reversed(started):
        await runtime.aclose()


# --- helpers -----------------------------------------------------------------------


async def enqueue(
    runtime: Runtime, name: str, key: str, payload: dict[str, Any] | None = None
) -> None:
    async with runtime.get(AccountService)._uow() as tx:
        await tx.jobs.enqueue(name, payload or {}, idempotency_key=key)
        await tx.commit()


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    *processes: CeleryProcess,
    timeout: float = WAIT_SECONDS,
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(p.text()[-3000:] for p in processes)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        await asyncio.sleep(0.1)


async def job_state(runtime: Runtime, database: str, key: str) -> JobState | None:
    rows = await sql(database, "SELECT id FROM jobs WHERE idempotency_key = $1", key)
    return await runtime.jobs.outbox.get(rows[0]["id"]) if rows else None


def in_status(
    runtime: Runtime, database: str, key: str, status: JobStatus
) -> Callable[[], Awaitable[JobState | None]]:
    async def check() -> JobState | None:
        state = await job_state(runtime, database, key)
        return state if state is not None and state.status is status else None

    return check


async def runs(database: str, key: str) -> list[asyncpg.Record]:
    return list(
        await sql(
            database, "SELECT job_id, attempt, pid FROM probe_runs WHERE key = $1 ORDER BY id", key
        )
    )


async def effects(database: str, key: str) -> int:
    rows = await sql(database, "SELECT count(*) AS n FROM probe_effects WHERE key = $1", key)
    return int(rows[0]["n"])


async def run_probe_jobs(runtime: Runtime, database: str, worker: CeleryProcess) -> None:
    """The same scenario on every broker: three jobs, each done once, effect once, each
    run in the worker's pool (the probe records the pid that ran it)."""
    keys = [unique("effect") for _ in range(3)]
    for key in keys:
        await enqueue(runtime, "probe.effect", key, {"n": key})
    for key in keys:
        state = await eventually(
            in_status(runtime, database, key, JobStatus.DONE), f"job {key} done", worker
        )
        assert state.attempts == 1 and state.finished_at is not None
        assert await effects(database, key) == 1
        recorded = await runs(database, key)
        assert [run["attempt"] for run in recorded] == [1]
        assert_ran_in_pool_of(worker, [run["pid"] for run in recorded])


# --- the tests ---------------------------------------------------------------------


async def test_jobs_run_on_a_worker_consuming_from_redis(
    database: str,
    redis_worker: tuple[Broker, CeleryProcess],
    runtimes: Callable[..., Awaitable[Runtime]],
) -> None:
    broker, worker = redis_worker
    runtime = await runtimes(database, broker)
    await run_probe_jobs(runtime, database, worker)


async def test_the_same_jobs_run_on_a_worker_consuming_from_rabbitmq(
    database: str,
    rabbitmq_url: str,
    runtimes: Callable[..., Awaitable[Runtime]],
    tmp_path: Path,
) -> None:
    with rabbitmq_broker(rabbitmq_url, "amqp") as broker:
        worker = start_worker(job_settings(database, broker), tmp_path / "worker.log")
        try:
            assert "amqp://" in worker.text()  # the broker really is RabbitMQ
            runtime = await runtimes(database, broker)
            await run_probe_jobs(runtime, database, worker)
        finally:
            worker.stop()


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(
    database: str,
    redis_worker: tuple[Broker, CeleryProcess],
    runtimes: Callable[..., Awaitable[Runtime]],
) -> None:
    broker, worker = redis_worker
    runtime = await runtimes(database, broker)
    rolled_back, committed = unique("rolled-back"), unique("committed")
    async with runtime.get(AccountService)._uow() as tx:
        await tx.jobs.enqueue("probe.effect", {}, idempotency_key=rolled_back)
        await tx.rollback()
    await enqueue(runtime, "probe.effect", committed)  # enqueued after: a barrier
    await eventually(
        in_status(runtime, database, committed, JobStatus.DONE), "the committed job", worker
    )
    assert await job_state(runtime, database, rolled_back) is None
    assert await runs(database, rolled_back) == [] and await effects(database, rolled_back) == 0


async def test_a_worker_killed_mid_job_finishes_the_job_exactly_once_after_restart(
    database: str,
    redis_url: str,
    runtimes: Callable[..., Awaitable[Runtime]],
    tmp_path: Path,
) -> None:
    with redis_broker(redis_url, "kill") as broker:
        values = job_settings(database, broker)
        first = start_worker(values, tmp_path / "first.log")
        second: CeleryProcess | None = None
        try:
            runtime = await runtimes(database, broker)
            key = unique("kill")
            await enqueue(runtime, "probe.effect", key, {"hang_first_run": True})
            # The first run recorded its effect and now hangs before the job is done.
            (run,) = await eventually(lambda: runs(database, key), "the first run", first)
            child = run["pid"]
            assert_ran_in_pool_of(first, [child])
            assert running(child)
            first.kill()
            assert not running(first.pid)

            async def child_gone() -> bool:
                return not running(child)  # SIGKILL lands at once; teardown takes a moment

            await eventually(child_gone, "the pool process to die", timeout=5)
            state = await job_state(runtime, database, key)
            assert state is not None and state.status is JobStatus.RUNNING
            assert state.attempts == 1 and await effects(database, key) == 1

            second = start_worker(values, tmp_path / "second.log")
            # The lease expires, the relay hands the job out again, the new worker runs it.
            done = await eventually(
                in_status(runtime, database, key, JobStatus.DONE), "the job done", second
            )
            assert done.attempts == 2 and done.lease == 2
            assert done.last_error is not None and "lease expired" in done.last_error
            first_run, second_run = await runs(database, key)
            assert (first_run["attempt"], second_run["attempt"]) == (1, 2)
            # The second run was in the new worker's pool, not in the killed process
            # (gone, its pid not reused by the new pool) nor in the test process.
            assert first_run["pid"] == child
            assert_ran_in_pool_of(second, [second_run["pid"]])
            assert second_run["pid"] != child
            assert await effects(database, key) == 1  # the handler's unique key held

            # A late copy of the finished job (say, redelivered by the broker) is turned
            # away before the handler: the job is done once.
            dispatcher = CeleryJobDispatcher(
                CeleryOptions(broker.url, queue=broker.queue, redis_key_prefix=broker.redis_prefix)
            )
            try:
                await dispatcher.dispatch(Job(done.id, "probe.effect", {}, key, lease=done.lease))
            finally:
                await dispatcher.aclose()
            await eventually(
                lambda: second.logged_event("job_skipped"), "the late copy skipped", second
            )
            assert len(await runs(database, key)) == 2 and await effects(database, key) == 1
            assert await job_state(runtime, database, key) == done
        finally:
            first.kill()
            if second is not None:
                second.stop()


async def test_a_job_that_always_fails_is_dead_lettered_and_the_cli_retries_it(
    database: str,
    redis_worker: tuple[Broker, CeleryProcess],
    runtimes: Callable[..., Awaitable[Runtime]],
    tmp_path: Path,
) -> None:
    broker, worker = redis_worker
    runtime = await runtimes(database, broker)
    key = unique("flaky")
    await enqueue(runtime, "probe.flaky", key)
    dead = await eventually(
        in_status(runtime, database, key, JobStatus.DEAD), "the dead letter", worker
    )
    assert dead.attempts == 3 and dead.last_error == "RuntimeError: probe: the switch is off"
    failed = await runs(database, key)
    assert [r["attempt"] for r in failed] == [1, 2, 3]
    assert_ran_in_pool_of(worker, [r["pid"] for r in failed])

    cli_env = process_env(job_settings(database, broker, relay=False))
    listing = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "portico"), "jobs", "dead"],
        env=cli_env,
        cwd=tmp_path,  # no developer's `.env` here
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("\t") for line in listing.stdout.splitlines() if line[:1].isdigit()]
    assert [str(dead.id), "probe.flaky", "3"] in [row[:3] for row in rows]

    await sql(database, "INSERT INTO probe_switches (name) VALUES ($1)", key)
    retry = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "portico"), "jobs", "retry", str(dead.id)],
        env=cli_env,
        cwd=tmp_path,  # no developer's `.env` here
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert retry.returncode == 0, retry.stderr
    # Picked up by the relay's next poll: pending again, due now.
    done = await eventually(in_status(runtime, database, key, JobStatus.DONE), "the retry", worker)
    assert done.attempts == 1 and await effects(database, key) == 1
    every_run = await runs(database, key)
    assert len(every_run) == 4
    assert_ran_in_pool_of(worker, [r["pid"] for r in every_run])


async def test_beat_sweeps_jobs_that_no_process_relayed(
    database: str,
    redis_worker: tuple[Broker, CeleryProcess],
    runtimes: Callable[..., Awaitable[Runtime]],
    tmp_path: Path,
) -> None:
    broker, worker = redis_worker
    runtime = await runtimes(database, broker, relay=False)  # enqueues, never publishes
    key = unique("swept")
    await enqueue(runtime, "probe.effect", key)
    beat = CeleryProcess(
        ["beat", "--schedule", str(tmp_path / "beat-schedule"), "--loglevel=INFO"],
        process_env(job_settings(database, broker)),
        tmp_path / "beat.log",
    )
    try:
        await eventually(
            in_status(runtime, database, key, JobStatus.DONE), "the swept job", worker, beat
        )
        assert await effects(database, key) == 1
        # Beat only scheduled the sweep: the job itself ran in the worker's pool.
        assert_ran_in_pool_of(worker, [r["pid"] for r in await runs(database, key)])
    finally:
        beat.stop()


async def test_a_stuck_broker_leaves_jobs_claimed_and_the_relay_running(
    database: str, runtimes: Callable[..., Awaitable[Runtime]]
) -> None:
    server = SilentServer()
    try:
        broker = Broker(f"redis://127.0.0.1:{server.port}/0", queue=unique("stuck"))
        runtime = await runtimes(database, broker)
        key = unique("stuck")
        started = time.monotonic()
        await enqueue(runtime, "probe.effect", key)

        async def claimed_again() -> JobState | None:
            state = await job_state(runtime, database, key)
            return state if state is not None and state.lease >= 2 else None

        # The publish times out; the job stays claimed until its lease expires, then the
        # relay (still alive) claims it again and retries the publish.
        state = await eventually(claimed_again, "the job claimed again")
        assert state.status is JobStatus.CLAIMED and state.attempts == 0
        assert time.monotonic() - started >= LEASE_SECONDS
        assert not any(task.done() for task in runtime.jobs._tasks)
    finally:
        server.close()


async def test_a_worker_process_serves_its_own_metrics_on_its_port(
    database: str,
    redis_url: str,
    tmp_path: Path,
    runtimes: Callable[..., Awaitable[Runtime]],
) -> None:
    port = free_port()
    with redis_broker(redis_url, "metrics") as broker:
        values = {**job_settings(database, broker), "worker": {"metrics_port": port}}
        worker = start_worker(values, tmp_path / "worker.log")
        try:
            runtime = await runtimes(database, broker)
            key = unique("metrics")
            await enqueue(runtime, "probe.effect", key, {"n": key})
            await eventually(
                in_status(runtime, database, key, JobStatus.DONE), f"job {key} done", worker
            )
            # The only pool child (index 0) serves the base port; the job is counted
            # right after its row is marked done.
            done = (("name", "probe.effect"), ("outcome", "done"))

            async def scraped() -> dict[tuple[str, Any], float] | None:
                text = await asyncio.to_thread(_scrape, f"http://127.0.0.1:{port}/metrics")
                found = {
                    (s.name, tuple(sorted(s.labels.items()))): s.value
                    for family in text_string_to_metric_families(text)
                    for s in family.samples
                }
                return found if ("portico_jobs_total", done) in found else None

            samples = await eventually(scraped, "the job in the worker's metrics", worker)
        finally:
            worker.stop()
    assert samples[("portico_jobs_total", done)] >= 1
    assert samples[("portico_job_duration_seconds_count", done)] >= 1
    assert ("portico_credits_total", (("kind", "grant"),)) in samples
    assert not any(name.startswith("portico_http_") for name, _ in samples)


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


async def test_a_worker_process_traces_its_job_runs(
    database: str,
    redis_url: str,
    tmp_path: Path,
    runtimes: Callable[..., Awaitable[Runtime]],
) -> None:
    # Tracing starts in the pool child after the fork (its runtime's resource); the
    # console exporter prints its spans, one JSON line each, into the worker's log.
    tracing = {"enabled": True, "exporter": "console", "service_name": "portico-worker"}
    with redis_broker(redis_url, "tracing") as broker:
        worker = start_worker(
            {**job_settings(database, broker), "tracing": tracing}, tmp_path / "worker.log"
        )
        try:
            runtime = await runtimes(database, broker)
            key = unique("traced")
            await enqueue(runtime, "probe.effect", key, {"n": key})
            await eventually(
                in_status(runtime, database, key, JobStatus.DONE), f"job {key} done", worker
            )
            state = await job_state(runtime, database, key)
            assert state is not None
            job_id = state.id

            async def job_span() -> dict[str, Any] | None:
                # The batch is exported within 5 s of the run. Only this test's job: the
                # database is shared, and a job another test left may run here too.
                for line in worker.text().splitlines():
                    if line.startswith('{"name": "job probe.effect"'):
                        span: dict[str, Any] = json.loads(line)
                        if span["attributes"].get("portico.job.id") == job_id:
                            return span
                return None

            span = await eventually(job_span, "the job's span in the worker's output", worker)
        finally:
            worker.stop()
    assert span["attributes"]["portico.job.name"] == "probe.effect"
    assert span["attributes"]["portico.job.attempt"] == 1
    assert span["resource"]["attributes"]["service.name"] == "portico-worker"

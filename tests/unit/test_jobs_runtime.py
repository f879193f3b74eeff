"""Jobs through the composition root: the inline runner, drain, runner choice, the CLI.

Memory and embedded (SQLite file) profiles; no sockets (the Celery runner is only built,
never connected).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from adapters.celery.dispatcher import CeleryJobDispatcher
from adapters.memory.clock import ManualClock
from core.identity.service import AccountService
from core.platform.jobs import JobStatus
from entrypoints.bootstrap.container import build_container
from entrypoints.bootstrap.runtime import Runtime, start_runtime
from entrypoints.bootstrap.settings import Settings
from entrypoints.cli import main
from tests.unit.job_probes import PROBE, SPEC

CHEAP_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True}


def settings_for(profile: str, tmp_path: Path, **overrides: Any) -> Settings:
    database: dict[str, Any] = (
        {"backend": "memory"}
        if profile == "memory"
        else {"url": f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", "auto_create": True}
    )
    jobs = {"extra_handlers": [SPEC], "poll_interval_seconds": 0.05, **overrides.pop("jobs", {})}
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        secret_key="k" * 48,
        passwords=CHEAP_HASHING,  # type: ignore[arg-type]
        database=database,  # type: ignore[arg-type]
        email={"backend": "memory"},  # type: ignore[arg-type]
        jobs=jobs,  # type: ignore[arg-type]
        **overrides,
    )


@pytest.fixture(params=["memory", "embedded"])
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def runtime(profile: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    PROBE.reset()
    runtime = await start_runtime(settings_for(profile, tmp_path))
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def enqueue(
    runtime: Runtime, name: str, payload: dict[str, Any], key: str, *, commit: bool = True
) -> None:
    async with runtime.get(AccountService)._uow() as tx:
        await tx.jobs.enqueue(name, payload, idempotency_key=key)
        if commit:
            await tx.commit()


async def test_the_inline_runner_runs_a_committed_job_in_the_background(
    runtime: Runtime,
) -> None:
    await enqueue(runtime, "probe.record", {"n": 1}, "k1")
    # No drain: the commit woke the relay, a runner task ran the job.
    await asyncio.wait_for(PROBE.ran.wait(), 5)
    assert [job.payload for job in PROBE.seen] == [{"n": 1}]
    await runtime.drain_jobs()
    state = await runtime.jobs.outbox.get(PROBE.seen[0].id)
    assert state is not None and state.status is JobStatus.DONE and state.attempts == 1


async def test_a_rolled_back_job_never_runs(runtime: Runtime) -> None:
    await enqueue(runtime, "probe.record", {"n": 1}, "rolled-back", commit=False)
    await enqueue(runtime, "probe.record", {"n": 2}, "committed")
    await runtime.drain_jobs()
    assert [job.idempotency_key for job in PROBE.seen] == ["committed"]


async def test_drain_runs_the_jobs_that_jobs_enqueue(runtime: Runtime) -> None:
    await enqueue(runtime, "probe.chain", {"left": 3}, "chain-3")
    await runtime.drain_jobs()
    assert sorted(job.payload["left"] for job in PROBE.seen) == [0, 1, 2, 3]


async def test_failures_back_off_then_land_in_the_dead_letters(
    profile: str, tmp_path: Path
) -> None:
    PROBE.reset()
    settings = settings_for(
        profile,
        tmp_path,
        jobs={"max_attempts": 2, "backoff_base_seconds": 10, "backoff_jitter": 0},
    )
    clock = ManualClock()
    container = build_container(settings)
    container.clock.override(providers.Object(clock))
    runtime = await start_runtime(settings, container)
    try:
        await enqueue(runtime, "probe.fail", {}, "f")
        await runtime.drain_jobs()
        assert len(PROBE.seen) == 1
        clock.advance(9)
        await runtime.drain_jobs()  # the retry is not due yet
        assert len(PROBE.seen) == 1
        clock.advance(1)
        await runtime.drain_jobs()
        assert [job.attempts for job in PROBE.seen] == [1, 2]
        (dead,) = await runtime.jobs.admin.list_dead()
        assert (dead.name, dead.last_error) == ("probe.fail", "RuntimeError: probe failure")
        await runtime.jobs.admin.retry_dead(dead.id)
        await runtime.drain_jobs()
        assert len(PROBE.seen) == 3
    finally:
        await runtime.aclose()


async def test_the_worker_and_the_cli_start_no_job_loops(tmp_path: Path) -> None:
    runtime = await start_runtime(settings_for("memory", tmp_path), run_jobs=False)
    try:
        assert runtime.jobs._tasks == []
        assert "probe.record" in runtime.jobs.executor.job_names
    finally:
        await runtime.aclose()


async def test_the_celery_runner_publishes_through_celery(tmp_path: Path) -> None:
    settings = settings_for(
        "memory",
        tmp_path,
        jobs={"runner": "celery", "relay": False},
        celery={"broker_url": "redis://127.0.0.1:6399/0"},
    )
    container = build_container(settings)
    runtime = await start_runtime(settings, container)
    try:
        assert isinstance(await container.job_dispatcher(), CeleryJobDispatcher)
        assert runtime.jobs._tasks == []  # relay off; no inline runners under Celery
    finally:
        await runtime.aclose()


async def test_the_celery_runner_needs_a_broker(tmp_path: Path) -> None:
    settings = settings_for("memory", tmp_path, jobs={"runner": "celery"})
    with pytest.raises(ValueError, match="PORTICO_CELERY__BROKER_URL"):
        await start_runtime(settings)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["tests.unit.job_probes"], "module:function"),
        ([SPEC, SPEC], "two handlers"),
    ],
)
async def test_extra_handlers_are_checked_at_startup(
    tmp_path: Path, specs: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await start_runtime(settings_for("memory", tmp_path, jobs={"extra_handlers": specs}))


def test_the_cli_lists_and_retries_dead_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    for name, value in {
        "PORTICO_DATABASE__URL": url,
        "PORTICO_DATABASE__AUTO_CREATE": "true",
        "PORTICO_JOBS__EXTRA_HANDLERS": f'["{SPEC}"]',
        "PORTICO_JOBS__MAX_ATTEMPTS": "1",
        "PORTICO_LOG_LEVEL": "ERROR",
    }.items():
        monkeypatch.setenv(name, value)

    async def make_a_dead_job() -> int:
        runtime = await start_runtime(Settings(), run_jobs=False)
        try:
            await enqueue(runtime, "probe.fail", {"to": "x"}, "cli-key")
            await runtime.drain_jobs()
            (dead,) = await runtime.jobs.admin.list_dead()
            return dead.id
        finally:
            await runtime.aclose()

    job_id = asyncio.run(make_a_dead_job())
    capsys.readouterr()
    assert main(["jobs", "dead"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0][0] == "id"
    assert rows[1][:3] == [str(job_id), "probe.fail", "1"]
    assert rows[1][4:] == ["cli-key", "RuntimeError: probe failure"]

    assert main(["jobs", "retry", str(job_id)]) == 0
    assert f"job {job_id} is pending again" in capsys.readouterr().out
    assert main(["jobs", "retry", str(job_id)]) == 1
    assert "No such job" in capsys.readouterr().err
    assert main(["jobs", "dead"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []


async def test_closing_stops_every_job_task(tmp_path: Path) -> None:
    # Cancelling the runner tasks sets the relay's wake-up as the relay is cancelled too;
    # the relay must still stop (asyncio.wait_for on 3.11 could swallow that cancel).
    PROBE.reset()
    runtime = await start_runtime(settings_for("memory", tmp_path))
    tasks = list(runtime.jobs._tasks)
    await enqueue(runtime, "probe.chain", {"left": 2}, "chain-2")
    await runtime.drain_jobs()
    await asyncio.wait_for(runtime.aclose(), 5)
    assert len(tasks) == 5 and all(task.done() for task in tasks)

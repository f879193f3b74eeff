"""Probe jobs for the Celery worker tests, loaded in the worker through the extension
point `PORTICO_JOBS__EXTRA_HANDLERS=["tests.integration.celery_probes:handlers"]`.

They leave their traces in the test database (tables made by `PROBE_TABLES`):
- `probe_runs`: one row per run (job id, key, attempt, worker process id);
- `probe_effects`: the job's effect, under a unique key, as a real handler would record
  it, so a run repeated after a crash cannot apply it twice;
- `probe_switches`: flipped by a test to make `probe.flaky` start succeeding.
"""

from __future__ import annotations

import asyncio
import os

import asyncpg

from core.platform.jobs import Job, JobHandler
from entrypoints.bootstrap.services import Services
from entrypoints.bootstrap.settings import Settings

SPEC = "tests.integration.celery_probes:handlers"

PROBE_TABLES = """
CREATE TABLE IF NOT EXISTS probe_runs (
    id serial PRIMARY KEY, job_id bigint NOT NULL, key text NOT NULL,
    attempt int NOT NULL, pid int NOT NULL
);
CREATE TABLE IF NOT EXISTS probe_effects (key text PRIMARY KEY, job_id bigint NOT NULL);
CREATE TABLE IF NOT EXISTS probe_switches (name text PRIMARY KEY);
"""
DROP_PROBE_TABLES = "DROP TABLE IF EXISTS probe_runs, probe_effects, probe_switches"


def plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def handlers(services: Services, settings: Settings) -> dict[str, JobHandler]:
    dsn = plain_dsn(settings.database.url)

    async def record_run(connection: asyncpg.Connection, job: Job) -> int:
        await connection.execute(
            "INSERT INTO probe_runs (job_id, key, attempt, pid) VALUES ($1, $2, $3, $4)",
            job.id,
            job.idempotency_key,
            job.attempts,
            os.getpid(),
        )
        runs: int = await connection.fetchval(
            "SELECT count(*) FROM probe_runs WHERE key = $1", job.idempotency_key
        )
        return runs

    async def record_effect(connection: asyncpg.Connection, job: Job) -> None:
        # The handler's idempotency: its effect lives under a unique key.
        await connection.execute(
            "INSERT INTO probe_effects (key, job_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            job.idempotency_key,
            job.id,
        )

    async def effect(job: Job) -> None:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            runs = await record_run(connection, job)
            await record_effect(connection, job)
        finally:
            await connection.close()
        if job.payload.get("hang_first_run") and runs == 1:
            # Effect recorded, job not yet marked done: the worker is killed here.
            await asyncio.sleep(60)

    async def flaky(job: Job) -> None:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            await record_run(connection, job)
            healed = await connection.fetchval(
                "SELECT count(*) FROM probe_switches WHERE name = $1", job.idempotency_key
            )
            if not healed:
                raise RuntimeError("probe: the switch is off")
            await record_effect(connection, job)
        finally:
            await connection.close()

    return {"probe.effect": effect, "probe.flaky": flaky}

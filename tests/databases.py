"""Databases for the SQL adapter tests: SQLite files, fresh Postgres databases, cleanup."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.services import POSTGRES_ADMIN_URL, need, reachable


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def forget_queued_jobs(url: str) -> None:
    """Delete every job in the database at `url` (a SQLAlchemy asyncpg URL), if it has jobs.

    Tests of the services profile share one database: a job an earlier test left queued
    (or due for a retry) would otherwise run in a later test's drain and send its mail.
    """
    import asyncpg

    async def forget() -> None:
        conn = await asyncpg.connect(
            url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=5
        )
        try:
            if await conn.fetchval("SELECT to_regclass('jobs')") is not None:
                await conn.execute("DELETE FROM jobs")
        finally:
            await conn.close()

    asyncio.run(forget())


@contextmanager
def fresh_postgres_database(label: str) -> Iterator[str]:
    """An empty Postgres database of its own, dropped afterwards. Call from sync code.

    Skips (or fails under REQUIRE_SERVICES) when Postgres is not reachable.
    """
    need("PostgreSQL", reachable(POSTGRES_ADMIN_URL, 5432))
    name = f"portico_test_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def create_tables(engine: AsyncEngine, metadata: MetaData) -> None:
    """Create the tables if missing and empty them (ids restart at 1)."""
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        names = [table.name for table in reversed(metadata.sorted_tables)]
        if connection.dialect.name == "postgresql":
            quoted = ", ".join(f'"{name}"' for name in names)
            await connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                await connection.execute(text(f'DELETE FROM "{name}"'))

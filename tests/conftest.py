"""Fixtures shared by every test: real-server URLs with isolation per test session."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest

from tests.services import (
    POSTGRES_ADMIN_URL,
    REDIS_TEST_DB,
    REDIS_URL,
    need,
    reachable,
)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, empty Postgres database for this test session; dropped afterwards.

    Yields a SQLAlchemy URL (`postgresql+asyncpg://...`).
    """
    need("PostgreSQL", reachable(POSTGRES_ADMIN_URL, 5432))
    name = f"portico_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the machine's Redis, on the logical database reserved for tests."""
    need("Redis", reachable(REDIS_URL, 6379))
    return f"{REDIS_URL.rstrip('/')}/{REDIS_TEST_DB}"


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix unique to one test, so tests never see each other's keys."""
    return f"portico-test:{uuid.uuid4().hex[:10]}:"

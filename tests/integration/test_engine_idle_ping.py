"""The Postgres engine pings a pooled connection only after it sat idle, and replaces
one the server dropped meanwhile; a connection used a moment ago goes out unpinged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.engine import create_engine

pytestmark = pytest.mark.integration

IDLE = 0.3


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_dropped_while_idle_is_replaced_on_checkout(
    postgres_database: str,
) -> None:
    engine = create_engine(
        postgres_database, pool_size=1, max_overflow=0, ping_after_idle_seconds=IDLE
    )
    try:
        first = await _backend_pid(engine)
        # The server drops the pooled connection while it sits idle.
        admin = create_engine(postgres_database)
        try:
            async with admin.connect() as conn:
                await conn.execute(sa.text(f"SELECT pg_terminate_backend({first})"))
        finally:
            await admin.dispose()
        await asyncio.sleep(IDLE * 2)
        # The checkout pings it, finds it gone and hands out a new one: no error.
        second = await _backend_pid(engine)
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_used_a_moment_ago_is_not_pinged(postgres_database: str) -> None:
    engine = create_engine(
        postgres_database, pool_size=1, max_overflow=0, ping_after_idle_seconds=60
    )
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    pings: list[Any] = []
    dialect = engine.sync_engine.dialect
    ping = dialect.do_ping

    def counted_ping(connection: Any) -> bool:
        pings.append(connection)
        return ping(connection)

    dialect.do_ping = counted_ping  # type: ignore[method-assign]
    try:
        for _ in range(5):
            await _backend_pid(engine)
        assert pings == []
        assert len(statements) == 5
    finally:
        await engine.dispose()

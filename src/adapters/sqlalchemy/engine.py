"""Building async engines for Postgres and SQLite, and probing them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from core.shared.errors import UnavailableError

_IDLE_SINCE = "portico_idle_since"
# Idle for this long, a pooled Postgres connection is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 5.0,
    connect_timeout: float = 5.0,
    statement_timeout_ms: int = 15000,
    ping_after_idle_seconds: float = PING_AFTER_IDLE_SECONDS,
    echo: bool = False,
) -> AsyncEngine:
    """An async engine for Postgres (asyncpg) or SQLite (aiosqlite).

    `postgresql://` and `sqlite://` URLs get the async driver; other drivers are refused.

    Postgres: `connect_timeout`, a server-side `statement_timeout` (plus a client-side
    command timeout just above it), a ping on checkout of a connection idle for
    `ping_after_idle_seconds` or more (`_ping_when_idle`).

    SQLite: foreign keys on, WAL for file databases (whose directory is created), and
    every transaction opened with `BEGIN IMMEDIATE`, so transactions run one at a time
    and a read-modify-write cannot lose an update. `connect_timeout` is the busy timeout
    (how long to wait for the lock); `statement_timeout_ms` does not apply. Keep units of
    work short: one that stays open blocks every other. `:memory:` databases share one
    connection and suit single-session use only.
    """
    parsed = _async_driver(make_url(url))
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        engine = _create_async_engine(
            parsed,
            echo=echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            connect_args={
                "timeout": connect_timeout,
                # A little slack on the client so the server's timeout (a clean
                # QueryCanceled, transaction still usable for rollback) fires first.
                "command_timeout": statement_timeout_ms / 1000 + 1,
                "server_settings": {"statement_timeout": str(statement_timeout_ms)},
            },
        )
        _ping_when_idle(engine, ping_after_idle_seconds)
        return engine
    return _sqlite_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        busy_timeout_ms=int(connect_timeout * 1000),
        echo=echo,
    )


_READ_ONLY_OPTION = "portico_read_only"
# Execution options of an engine whose transactions promise not to write.
READ_ONLY = {_READ_ONLY_OPTION: True}

_ASYNC_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite"}


def _async_driver(url: URL) -> URL:
    """`postgresql://` and `sqlite://` get their async driver; any other driver is refused."""
    backend = url.get_backend_name()
    driver = _ASYNC_DRIVERS.get(backend)
    if driver is None:
        raise ValueError(f"unsupported database backend: {backend!r}")
    if "+" not in url.drivername:
        return url.set(drivername=f"{backend}+{driver}")
    if url.get_driver_name() != driver:
        raise ValueError(f"use {backend}+{driver}:// (got {url.drivername}://)")
    return url


def _is_memory_database(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(
    url: URL,
    *,
    pool_size: int,
    max_overflow: int,
    pool_timeout: float,
    busy_timeout_ms: int,
    echo: bool,
) -> AsyncEngine:
    in_memory = _is_memory_database(url)
    options: dict[str, Any] = {"echo": echo}
    if not in_memory:
        database = url.database or ""
        if not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        options.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
    engine = _create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000}, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The driver's own implicit BEGIN (deferred, issued only before DML) is what lets
        # two transactions read the same row and both write it: take over transactions.
        try:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
                # LIKE is case-sensitive on Postgres and in memory; make SQLite agree.
                cursor.execute("PRAGMA case_sensitive_like=ON")
                if not in_memory:
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute("PRAGMA synchronous=NORMAL")
            finally:
                cursor.close()
        except BaseException:
            # The pool forgets a connection whose setup failed without closing it, which
            # would leak aiosqlite's worker thread on every failed attempt.
            with contextlib.suppress(Exception):
                dbapi_connection.close()
            raise

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Read-only units begin deferred: under WAL they read a snapshot beside the one
        # writer instead of queueing for the write lock.
        if connection.get_execution_options().get(_READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection on checkout when it sat idle `idle_seconds` or more, and
    replace it when the ping finds it gone.

    SQLAlchemy's `pool_pre_ping` pings on every checkout, and with asyncpg a ping is
    three round trips (BEGIN, `;`, ROLLBACK): on a busy server that is a fifth of a
    send's round trips, for connections used milliseconds ago. A connection the server
    dropped (a restart, an idle timeout) has almost always been idle; one that breaks
    between two close uses fails its statement instead (503), and SQLAlchemy then
    invalidates the whole pool, so the next checkouts reconnect.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return  # new, or used a moment ago
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            if sync_engine.dialect.is_disconnect(error, dbapi_connection, None):
                # The pool discards this connection and checks out another.
                raise DisconnectionError() from error
            raise


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (no implicit reload on access)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine, *, seconds: float = 5.0) -> None:
    """Readiness probe: `SELECT 1` within `seconds`.

    Raises `UnavailableError(dependency="database")` on any failure, timeouts included.
    """
    try:
        async with asyncio.timeout(seconds), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise UnavailableError("The database is unavailable.", dependency="database") from exc

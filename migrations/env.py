"""Alembic environment: async engines, batch mode on SQLite, records metadata as target."""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.schema import metadata

DEFAULT_URL = "sqlite+aiosqlite:///./var/portico.db"

config = context.config
target_metadata = metadata

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    return str(url or os.environ.get("PORTICO_DATABASE__URL") or DEFAULT_URL)


def _configure(**options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,
        **options,
    )


def run_migrations_offline() -> None:
    url = database_url()
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # The engine opens every SQLite transaction itself (BEGIN IMMEDIATE), which makes
    # DDL transactional there too: a failed migration leaves nothing half-done.
    _configure(connection=connection, render_as_batch=sqlite, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")


def _sqlite_foreign_keys_off(engine: AsyncEngine) -> None:
    """Batch mode rebuilds a table by copy, drop and rename; with foreign keys on, the
    drop would cascade into (or be refused by) the rows that point at it. Alembic's
    advice: keep them off while migrating, then check them (see `_run_with`)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _off(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=OFF")
        finally:
            cursor.close()


async def run_migrations_online() -> None:
    engine = create_engine(database_url(), pool_size=1, max_overflow=0)
    if engine.dialect.name == "sqlite":
        _sqlite_foreign_keys_off(engine)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_with)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())

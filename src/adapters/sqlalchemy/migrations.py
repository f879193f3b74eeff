"""Running the Alembic migrations from code (CLIs, tests).

Both functions are synchronous and run their own event loop: call them from a CLI, or
from async code through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from adapters.sqlalchemy.engine import create_engine

REPO_ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS_DIR = REPO_ROOT / "migrations"
ALEMBIC_INI = REPO_ROOT / "alembic.ini"


def alembic_config(url: str) -> Config:
    """An Alembic config for the repo's migrations, aimed at `url`.

    The URL travels in `config.attributes` (never through the ini file, whose `%`
    interpolation would mangle encoded passwords); logging is left to the caller.
    """
    config = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    config.attributes["configure_logging"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def heads(url: str) -> list[str]:
    """The newest revision(s) the repository's migrations define."""
    return list(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def current(url: str) -> list[str]:
    """The revision(s) the database is at; empty for a database never migrated (or made
    by `create_all`, which writes no revision)."""

    def read(connection: Connection) -> list[str]:
        return list(MigrationContext.configure(connection).get_current_heads())

    async def run() -> list[str]:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())

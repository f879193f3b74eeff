"""The Alembic migrations: up and down cleanly, and in step with the records' metadata."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, inspect
from sqlalchemy.engine import Connection

from adapters.sqlalchemy.engine import create_engine
from adapters.sqlalchemy.migrations import downgrade, upgrade
from adapters.sqlalchemy.records import Base
from tests.databases import fresh_postgres_database, sqlite_url

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "var" / "migrated.db")
        return
    with fresh_postgres_database("migrations") as url:
        yield url


# Tables whose migrations gave their CHECK constraints a name the naming convention
# prefixed a second time (`ck_jobs_ck_jobs_status`: a plain `name=` in `op.create_table`
# goes through the convention; `op.f(...)` keeps it). Databases already carry those
# names, so only a migration renaming them can take a table off this list.
DOUBLE_PREFIXED_CHECKS = {"jobs", "audit_log", "one_time_tokens"}


def _record_checks() -> dict[str, set[str]]:
    """The CHECK constraints the records declare, by table, named as the migrations
    name them (Alembic's comparison does not look at CHECK constraints)."""
    checks = {}
    for table in Base.metadata.sorted_tables:
        names = {str(c.name) for c in table.constraints if isinstance(c, CheckConstraint)}
        if table.name in DOUBLE_PREFIXED_CHECKS:
            names = {f"ck_{table.name}_{name}" for name in names}
        checks[table.name] = names
    return checks


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    return {
        "tables": tables,
        "checks": {
            name: {str(check["name"]) for check in inspector.get_check_constraints(name)}
            for name in tables & set(Base.metadata.tables)
        },
        "diff": compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        ),
    }


async def _inspect(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_schema)
    finally:
        await engine.dispose()


def test_upgrade_matches_the_records_and_downgrade_removes_everything(
    empty_database: str,
) -> None:
    upgrade(empty_database)
    migrated = asyncio.run(_inspect(empty_database))
    assert migrated["tables"] == {"alembic_version", *Base.metadata.tables}
    assert migrated["diff"] == []
    assert migrated["checks"] == _record_checks()

    downgrade(empty_database)
    reverted = asyncio.run(_inspect(empty_database))
    assert reverted["tables"] == {"alembic_version"}

    # And back up again: the downgrade left nothing behind that blocks a re-run.
    upgrade(empty_database)
    assert asyncio.run(_inspect(empty_database))["diff"] == []


def test_the_comparison_notices_a_schema_that_drifted(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "drift.db")
    upgrade(url)

    async def drop_index() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.exec_driver_sql("DROP INDEX ix_users_created_at")
        finally:
            await engine.dispose()

    asyncio.run(drop_index())
    diff = asyncio.run(_inspect(url))["diff"]
    assert [entry[0] for entry in diff] == ["add_index"]

"""The dialect's own INSERT, which has `ON CONFLICT` (Postgres and SQLite alike)."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `table` for `dialect` (`session.get_bind().dialect.name`), ready for
    `.on_conflict_do_update(...)` / `.on_conflict_do_nothing(...)`."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database dialect: {dialect!r}")

"""What the SQL token repositories (one-time, refresh) share: plain conditional SQL.

Token rows are inserted, stamped once by conditional UPDATEs and purged by DELETE. The
statements bypass the ORM, so readers pass `populate_existing` to avoid stale copies.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import database_errors
from adapters.sqlalchemy.records import Base


class SqlAlchemyTokenTable:
    """Base of a repository over one token table (`RECORD`, with an `expires_at` column)."""

    RECORD: Any

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def _errors(self) -> AbstractContextManager[None]:
        return database_errors(None, Base.metadata)

    async def _count(self, statement: Any) -> int:
        with self._errors():
            result = await self._session.execute(statement)
        assert isinstance(result, CursorResult)
        return int(result.rowcount)

    async def _insert(self, record: Any) -> None:
        self._session.add(record)
        with self._errors():
            await self._session.flush()

    async def _stamp(self, *conditions: ColumnElement[bool], **values: datetime) -> int:
        """`UPDATE ... SET values WHERE conditions`; how many rows changed."""
        statement = (
            update(self.RECORD)
            .where(*conditions)
            .values(**values)
            # Plain SQL: no ORM objects to keep in step with it.
            .execution_options(synchronize_session=False)
        )
        return await self._count(statement)

    async def purge_expired(self, now: datetime) -> int:
        statement = (
            delete(self.RECORD)
            .where(self.RECORD.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        return await self._count(statement)

"""The SQL unit of work: one `AsyncSession`, one transaction, every repository on it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.sqlalchemy.engine import READ_ONLY, session_factory
from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.identity import USER_CONSTRAINT_ERRORS, SqlAlchemyUserRepository
from adapters.sqlalchemy.records import Base
from core.identity.ports import IdentityUnitOfWork, IdentityUnitOfWorkFactory, UserRepository

# Every constraint a repository names, so a violation that only surfaces at commit
# still maps to the same leaf error.
_CONSTRAINT_ERRORS: ConstraintErrors = {**USER_CONSTRAINT_ERRORS}


class SqlAlchemyUnitOfWork(IdentityUnitOfWork):
    """One database transaction over the identity repositories.

    Contract (the core `UnitOfWork`): `async with uow:`; nothing is visible to others
    before `commit()`; leaving the block without commit, or with an exception, rolls
    back; used by one task and not reused after exit. Driver failures raise
    `UnavailableError`, constraint violations the repositories' `ConflictError` leaves.
    """

    users: UserRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._session = sessions()
        self.users = SqlAlchemyUserRepository(self._session)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            with database_errors():
                await self._session.rollback()
        except Exception:
            # A rollback that fails (connection gone) must not hide the error that
            # brought us here; with nothing in flight, the outage is the news.
            if exc_type is None:
                raise
        finally:
            await self._session.close()

    async def commit(self) -> None:
        with database_errors(_CONSTRAINT_ERRORS, Base.metadata):
            await self._session.commit()

    async def rollback(self) -> None:
        with database_errors():
            await self._session.rollback()


class SqlAlchemyUnitOfWorkFactory(IdentityUnitOfWorkFactory):
    """Opens a new `SqlAlchemyUnitOfWork` on `engine` per call."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)
        self._read_only_sessions = session_factory(engine.execution_options(**READ_ONLY))

    def __call__(self, *, read_only: bool = False) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self._read_only_sessions if read_only else self._sessions)

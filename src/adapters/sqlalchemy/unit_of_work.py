"""The SQL unit of work: one `AsyncSession`, one transaction, every repository on it."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.sqlalchemy.audit import SqlAlchemyAuditLog
from adapters.sqlalchemy.engine import READ_ONLY, session_factory
from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.identity import USER_CONSTRAINT_ERRORS, SqlAlchemyUserRepository
from adapters.sqlalchemy.jobs import SqlAlchemyJobQueue
from adapters.sqlalchemy.notifications import (
    NOTIFICATION_CONSTRAINT_ERRORS,
    SqlAlchemyNotificationPreferencesRepository,
)
from adapters.sqlalchemy.oauth_identities import (
    OAUTH_CONSTRAINT_ERRORS,
    SqlAlchemyOAuthIdentityRepository,
)
from adapters.sqlalchemy.one_time_tokens import SqlAlchemyOneTimeTokenRepository
from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.refresh_tokens import SqlAlchemyRefreshTokenRepository
from core.audit.ports import AuditLog
from core.identity.oauth_ports import OAuthIdentityRepository
from core.identity.ports import (
    IdentityUnitOfWork,
    IdentityUnitOfWorkFactory,
    OneTimeTokenRepository,
    RefreshTokenRepository,
    UserRepository,
)
from core.notifications.ports import (
    NotificationPreferencesRepository,
    NotificationsUnitOfWork,
    NotificationsUnitOfWorkFactory,
)
from core.platform.jobs import JobQueue
from core.shared.clock import Clock

# Every constraint a repository names, so a violation that only surfaces at commit
# still maps to the same leaf error.
_CONSTRAINT_ERRORS: ConstraintErrors = {
    **USER_CONSTRAINT_ERRORS,
    **NOTIFICATION_CONSTRAINT_ERRORS,
    **OAUTH_CONSTRAINT_ERRORS,
}


class SqlAlchemyUnitOfWork(IdentityUnitOfWork, NotificationsUnitOfWork):
    """One database transaction over the identity repositories.

    Contract (the core `UnitOfWork`): `async with uow:`; nothing is visible to others
    before `commit()`; leaving the block without commit, or with an exception, rolls
    back; used by one task and not reused after exit. Driver failures raise
    `UnavailableError`, constraint violations the repositories' `ConflictError` leaves.
    """

    users: UserRepository
    audit: AuditLog
    one_time_tokens: OneTimeTokenRepository
    refresh_tokens: RefreshTokenRepository
    oauth_identities: OAuthIdentityRepository
    notification_preferences: NotificationPreferencesRepository
    jobs: JobQueue

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock | None = None,
        on_jobs_committed: Callable[[], None] | None = None,
    ) -> None:
        self._session = sessions()
        # The outbox: jobs are rows written in this same transaction.
        self._jobs = SqlAlchemyJobQueue(self._session, clock, on_jobs_committed)
        self.jobs = self._jobs
        self.users = SqlAlchemyUserRepository(self._session)
        self.audit = SqlAlchemyAuditLog(self._session)
        self.one_time_tokens = SqlAlchemyOneTimeTokenRepository(self._session)
        self.refresh_tokens = SqlAlchemyRefreshTokenRepository(self._session)
        self.oauth_identities = SqlAlchemyOAuthIdentityRepository(self._session)
        self.notification_preferences = SqlAlchemyNotificationPreferencesRepository(self._session)

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
        self._jobs.after_commit()

    async def rollback(self) -> None:
        with database_errors():
            await self._session.rollback()


class SqlAlchemyUnitOfWorkFactory(IdentityUnitOfWorkFactory, NotificationsUnitOfWorkFactory):
    """Opens a new `SqlAlchemyUnitOfWork` on `engine` per call.

    `clock` dates enqueued jobs (give it the relay's clock); `on_jobs_committed` is
    called after each commit that enqueued jobs (it wakes an in-process relay).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock | None = None,
        on_jobs_committed: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = session_factory(engine)
        self._read_only_sessions = session_factory(engine.execution_options(**READ_ONLY))
        self._clock = clock
        self._on_jobs_committed = on_jobs_committed

    def __call__(self, *, read_only: bool = False) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(
            self._read_only_sessions if read_only else self._sessions,
            self._clock,
            self._on_jobs_committed,
        )

"""The SQL unit of work: one `AsyncSession`, one transaction, every repository on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.sqlalchemy.audit import SqlAlchemyAuditLog
from adapters.sqlalchemy.catalog import (
    PRODUCT_CONSTRAINT_ERRORS,
    TIER_CONSTRAINT_ERRORS,
    SqlAlchemyProductRepository,
    SqlAlchemyTierRepository,
)
from adapters.sqlalchemy.checkouts import CHECKOUT_CONSTRAINT_ERRORS, SqlAlchemyCheckoutRepository
from adapters.sqlalchemy.conversations import (
    CONVERSATION_CONSTRAINT_ERRORS,
    SqlAlchemyConversationRepository,
)
from adapters.sqlalchemy.credits import CREDIT_CONSTRAINT_ERRORS, SqlAlchemyCreditLedger
from adapters.sqlalchemy.engine import READ_ONLY, session_factory
from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.identity import USER_CONSTRAINT_ERRORS, SqlAlchemyUserRepository
from adapters.sqlalchemy.jobs import SqlAlchemyJobQueue
from adapters.sqlalchemy.messages import MESSAGE_CONSTRAINT_ERRORS, SqlAlchemyMessageRepository
from adapters.sqlalchemy.model_prices import (
    PRICE_CONSTRAINT_ERRORS,
    SqlAlchemyModelPriceRepository,
)
from adapters.sqlalchemy.notifications import (
    NOTIFICATION_CONSTRAINT_ERRORS,
    SqlAlchemyNotificationPreferencesRepository,
)
from adapters.sqlalchemy.oauth_identities import (
    OAUTH_CONSTRAINT_ERRORS,
    SqlAlchemyOAuthIdentityRepository,
)
from adapters.sqlalchemy.one_time_tokens import SqlAlchemyOneTimeTokenRepository
from adapters.sqlalchemy.payment_events import (
    EVENT_CONSTRAINT_ERRORS,
    SqlAlchemyReconciliationLog,
    SqlAlchemyWebhookEventRepository,
)
from adapters.sqlalchemy.payments import (
    CUSTOMER_CONSTRAINT_ERRORS,
    PAYMENT_CONSTRAINT_ERRORS,
    SqlAlchemyCustomerRepository,
    SqlAlchemyPaymentRepository,
)
from adapters.sqlalchemy.purchases import (
    OVERRIDE_CONSTRAINT_ERRORS,
    PURCHASE_CONSTRAINT_ERRORS,
    SqlAlchemyOverrideRepository,
    SqlAlchemyPurchaseRepository,
)
from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.refresh_tokens import SqlAlchemyRefreshTokenRepository
from adapters.sqlalchemy.reservations import (
    RESERVATION_CONSTRAINT_ERRORS,
    SqlAlchemyReservationRepository,
)
from adapters.sqlalchemy.subscriptions import (
    SUBSCRIPTION_CONSTRAINT_ERRORS,
    SqlAlchemySubscriptionRepository,
)
from adapters.sqlalchemy.usage_counters import SqlAlchemyUsageCounters
from core.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory
from core.conversations.ports import ConversationsUnitOfWork, ConversationsUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWork, IdentityUnitOfWorkFactory
from core.notifications.ports import NotificationsUnitOfWork, NotificationsUnitOfWorkFactory
from core.payments.ports import PaymentsUnitOfWork, PaymentsUnitOfWorkFactory
from core.shared.clock import Clock


@dataclass(frozen=True, slots=True)
class Table:
    """One repository of the unit of work, built on the unit's session, and the
    constraints it maps to core errors."""

    repository: Callable[[AsyncSession], object]
    constraint_errors: ConstraintErrors = field(default_factory=dict)


# Every repository, by the attribute name the core's unit-of-work Protocols give it.
# (The outbox, `jobs`, is every unit's too; it needs the clock and the commit hook.)
TABLES: Mapping[str, Table] = {
    "users": Table(SqlAlchemyUserRepository, USER_CONSTRAINT_ERRORS),
    "audit": Table(SqlAlchemyAuditLog),
    "one_time_tokens": Table(SqlAlchemyOneTimeTokenRepository),
    "refresh_tokens": Table(SqlAlchemyRefreshTokenRepository),
    "oauth_identities": Table(SqlAlchemyOAuthIdentityRepository, OAUTH_CONSTRAINT_ERRORS),
    "notification_preferences": Table(
        SqlAlchemyNotificationPreferencesRepository, NOTIFICATION_CONSTRAINT_ERRORS
    ),
    "tiers": Table(SqlAlchemyTierRepository, TIER_CONSTRAINT_ERRORS),
    "products": Table(SqlAlchemyProductRepository, PRODUCT_CONSTRAINT_ERRORS),
    "purchases": Table(SqlAlchemyPurchaseRepository, PURCHASE_CONSTRAINT_ERRORS),
    "overrides": Table(SqlAlchemyOverrideRepository, OVERRIDE_CONSTRAINT_ERRORS),
    "credits": Table(SqlAlchemyCreditLedger, CREDIT_CONSTRAINT_ERRORS),
    "reservations": Table(SqlAlchemyReservationRepository, RESERVATION_CONSTRAINT_ERRORS),
    "usage": Table(SqlAlchemyUsageCounters),
    "customers": Table(SqlAlchemyCustomerRepository, CUSTOMER_CONSTRAINT_ERRORS),
    "checkouts": Table(SqlAlchemyCheckoutRepository, CHECKOUT_CONSTRAINT_ERRORS),
    "subscriptions": Table(SqlAlchemySubscriptionRepository, SUBSCRIPTION_CONSTRAINT_ERRORS),
    "payments": Table(SqlAlchemyPaymentRepository, PAYMENT_CONSTRAINT_ERRORS),
    "webhook_events": Table(SqlAlchemyWebhookEventRepository, EVENT_CONSTRAINT_ERRORS),
    "reconciliations": Table(SqlAlchemyReconciliationLog),
    "conversations": Table(SqlAlchemyConversationRepository, CONVERSATION_CONSTRAINT_ERRORS),
    "messages": Table(SqlAlchemyMessageRepository, MESSAGE_CONSTRAINT_ERRORS),
    "model_prices": Table(SqlAlchemyModelPriceRepository, PRICE_CONSTRAINT_ERRORS),
}
# Every constraint a repository names, so a violation that only surfaces at commit
# still maps to the same leaf error.
_CONSTRAINT_ERRORS: ConstraintErrors = {
    constraint: error
    for table in TABLES.values()
    for constraint, error in table.constraint_errors.items()
}


# Payments and conversations first: their Protocols extend billing's (and payments'
# identity's), so the bases must name those after them for a consistent method
# resolution order.
class SqlAlchemyUnitOfWork(
    PaymentsUnitOfWork,
    ConversationsUnitOfWork,
    BillingUnitOfWork,
    IdentityUnitOfWork,
    NotificationsUnitOfWork,
):
    """One database transaction over every repository in `TABLES` and the outbox.

    Contract (the core `UnitOfWork`): `async with uow:`; nothing is visible to others
    before `commit()`; leaving the block without commit, or with an exception, rolls
    back; used by one task and not reused after exit. Driver failures raise
    `UnavailableError`, constraint violations the repositories' `ConflictError` leaves.
    """

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

    def __getattr__(self, name: str) -> object:
        # Repositories are built on first use (a unit reaches a few of `TABLES`, and a
        # send opens two units), then kept on the instance, where later lookups find
        # them without coming here.
        table = TABLES.get(name)
        if table is None or name.startswith("_"):
            raise AttributeError(name)
        repository = table.repository(self._session)
        setattr(self, name, repository)
        return repository

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


class SqlAlchemyUnitOfWorkFactory(
    IdentityUnitOfWorkFactory,
    NotificationsUnitOfWorkFactory,
    BillingUnitOfWorkFactory,
    PaymentsUnitOfWorkFactory,
    ConversationsUnitOfWorkFactory,
):
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

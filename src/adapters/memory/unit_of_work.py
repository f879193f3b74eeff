"""The in-memory unit of work: every context's repositories over one in-process database,
with the same transactional behaviour as the SQL adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from adapters.memory.audit import InMemoryAuditLog, InMemoryAuditState
from adapters.memory.catalog import (
    InMemoryProductRepository,
    InMemoryProductState,
    InMemoryTierRepository,
    InMemoryTierState,
)
from adapters.memory.conversations import (
    InMemoryConversationRepository,
    InMemoryConversationState,
    InMemoryModelPriceRepository,
    InMemoryModelPriceState,
)
from adapters.memory.credits import InMemoryCreditLedger, InMemoryCreditState
from adapters.memory.jobs import InMemoryJobQueue, InMemoryJobStore
from adapters.memory.messages import InMemoryMessageRepository, InMemoryMessageState
from adapters.memory.notifications import (
    InMemoryNotificationPreferencesRepository,
    InMemoryNotificationState,
)
from adapters.memory.oauth_identities import (
    InMemoryOAuthIdentityRepository,
    InMemoryOAuthIdentityState,
)
from adapters.memory.one_time_tokens import (
    InMemoryOneTimeTokenRepository,
    InMemoryOneTimeTokenState,
)
from adapters.memory.payment_events import (
    InMemoryReconciliationLog,
    InMemoryReconciliationState,
    InMemoryWebhookEventRepository,
    InMemoryWebhookEventState,
)
from adapters.memory.payments import (
    InMemoryCheckoutRepository,
    InMemoryCheckoutState,
    InMemoryCustomerRepository,
    InMemoryCustomerState,
    InMemoryPaymentRepository,
    InMemoryPaymentState,
)
from adapters.memory.purchases import (
    InMemoryOverrideRepository,
    InMemoryOverrideState,
    InMemoryPurchaseRepository,
    InMemoryPurchaseState,
)
from adapters.memory.refresh_tokens import (
    InMemoryRefreshTokenRepository,
    InMemoryRefreshTokenState,
)
from adapters.memory.reservations import (
    InMemoryReservationRepository,
    InMemoryReservationState,
)
from adapters.memory.subscriptions import (
    InMemorySubscriptionRepository,
    InMemorySubscriptionState,
)
from adapters.memory.transaction import PendingWrites
from adapters.memory.usage import InMemoryUsageCounters, InMemoryUsageState
from adapters.memory.users import InMemoryUserRepository, InMemoryUserState
from core.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory
from core.conversations.ports import ConversationsUnitOfWork, ConversationsUnitOfWorkFactory
from core.identity.ports import IdentityUnitOfWork, IdentityUnitOfWorkFactory
from core.notifications.ports import NotificationsUnitOfWork, NotificationsUnitOfWorkFactory
from core.payments.ports import PaymentsUnitOfWork, PaymentsUnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Table:
    """One repository of the unit of work: its committed data (`state()`, made once per
    database) and the repository a unit opens over it."""

    state: Callable[[], Any]
    repository: Callable[[Any, InMemoryUnitOfWork], PendingWrites]


def _user_exists(unit: InMemoryUnitOfWork) -> Callable[[int], Any]:
    async def exists(user_id: int) -> bool:
        # What the SQL foreign keys check: the user row exists (deleted or not), as
        # seen by this transaction.
        return await unit.users.get(user_id, include_deleted=True) is not None

    return exists


def _reservation_exists(unit: InMemoryUnitOfWork) -> Callable[[int], Any]:
    async def exists(reservation_id: int) -> bool:
        # The ledger's foreign key to the reservation an entry moves credits for.
        return await unit.reservations.get(reservation_id) is not None

    return exists


def _product_exists(unit: InMemoryUnitOfWork) -> Callable[[str], Any]:
    async def exists(code: str) -> bool:
        # The purchases' foreign key to products, as seen by this transaction.
        return await unit.products.get(code) is not None

    return exists


def _conversation_exists(unit: InMemoryUnitOfWork) -> Callable[[int], Any]:
    async def exists(conversation_id: int) -> bool:
        # The messages' foreign key to conversations (deleted or not), as seen by this
        # transaction.
        return await unit.conversations.get(conversation_id) is not None

    return exists


# Every repository, by the attribute name the core's unit-of-work Protocols give it.
TABLES: Mapping[str, Table] = {
    "users": Table(InMemoryUserState, lambda state, _: InMemoryUserRepository(state)),
    "audit": Table(InMemoryAuditState, lambda state, _: InMemoryAuditLog(state)),
    "one_time_tokens": Table(
        InMemoryOneTimeTokenState, lambda state, _: InMemoryOneTimeTokenRepository(state)
    ),
    "refresh_tokens": Table(
        InMemoryRefreshTokenState, lambda state, _: InMemoryRefreshTokenRepository(state)
    ),
    "oauth_identities": Table(
        InMemoryOAuthIdentityState,
        lambda state, unit: InMemoryOAuthIdentityRepository(state, _user_exists(unit)),
    ),
    "notification_preferences": Table(
        InMemoryNotificationState,
        lambda state, unit: InMemoryNotificationPreferencesRepository(state, _user_exists(unit)),
    ),
    "tiers": Table(InMemoryTierState, lambda state, _: InMemoryTierRepository(state)),
    "products": Table(InMemoryProductState, lambda state, _: InMemoryProductRepository(state)),
    "purchases": Table(
        InMemoryPurchaseState,
        lambda state, unit: InMemoryPurchaseRepository(
            state, _user_exists(unit), _product_exists(unit)
        ),
    ),
    "overrides": Table(
        InMemoryOverrideState,
        lambda state, unit: InMemoryOverrideRepository(state, _user_exists(unit)),
    ),
    "credits": Table(
        InMemoryCreditState,
        lambda state, unit: InMemoryCreditLedger(
            state, _user_exists(unit), _reservation_exists(unit)
        ),
    ),
    "reservations": Table(
        InMemoryReservationState,
        lambda state, unit: InMemoryReservationRepository(state, _user_exists(unit)),
    ),
    "usage": Table(
        InMemoryUsageState, lambda state, unit: InMemoryUsageCounters(state, _user_exists(unit))
    ),
    "customers": Table(
        InMemoryCustomerState,
        lambda state, unit: InMemoryCustomerRepository(state, _user_exists(unit)),
    ),
    "checkouts": Table(
        InMemoryCheckoutState,
        lambda state, unit: InMemoryCheckoutRepository(state, _user_exists(unit)),
    ),
    "subscriptions": Table(
        InMemorySubscriptionState,
        lambda state, unit: InMemorySubscriptionRepository(state, _user_exists(unit)),
    ),
    "payments": Table(
        InMemoryPaymentState,
        lambda state, unit: InMemoryPaymentRepository(state, _user_exists(unit)),
    ),
    "webhook_events": Table(
        InMemoryWebhookEventState, lambda state, _: InMemoryWebhookEventRepository(state)
    ),
    "reconciliations": Table(
        InMemoryReconciliationState, lambda state, _: InMemoryReconciliationLog(state)
    ),
    "conversations": Table(
        InMemoryConversationState,
        lambda state, unit: InMemoryConversationRepository(state, _user_exists(unit)),
    ),
    "messages": Table(
        InMemoryMessageState,
        lambda state, unit: InMemoryMessageRepository(
            state, _conversation_exists(unit), _user_exists(unit)
        ),
    ),
    "model_prices": Table(
        InMemoryModelPriceState, lambda state, _: InMemoryModelPriceRepository(state)
    ),
    # The outbox: jobs are rows written in the same transaction.
    "jobs": Table(InMemoryJobStore, lambda store, _: InMemoryJobQueue(store)),
}


class InMemoryDatabase:
    """The committed data of every table, shared by every unit of work of one factory,
    and the lock a commit holds."""

    def __init__(self, tables: Mapping[str, Table], **given: Any) -> None:
        unknown = set(given) - set(tables)
        if unknown:
            raise ValueError(f"no such tables: {', '.join(sorted(unknown))}")
        self.tables = tables
        self.states: dict[str, Any] = {
            name: given[name] if name in given else table.state() for name, table in tables.items()
        }
        self.lock = asyncio.Lock()

    def __getattr__(self, name: str) -> Any:
        # `database.users`, `database.jobs`...: a table's committed data (tests read it).
        states = self.__dict__.get("states", {})
        if name in states:
            return states[name]
        raise AttributeError(name)


# Payments and conversations first: their Protocols extend billing's (and payments'
# identity's), so the bases must name those after them for a consistent method
# resolution order.
class InMemoryUnitOfWork(
    PaymentsUnitOfWork,
    ConversationsUnitOfWork,
    BillingUnitOfWork,
    IdentityUnitOfWork,
    NotificationsUnitOfWork,
):
    """A transaction over an `InMemoryDatabase` (contract: the core `UnitOfWork`).

    Commit checks every repository, then applies every one, under the database's lock:
    it applies everything or, when a check raises (`EmailTakenError`...), nothing, and
    the unit ends as a failed SQL commit does. Leaving the block without commit discards
    the changes.
    """

    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database
        self._repositories: list[PendingWrites] = []
        for name, table in database.tables.items():
            repository = table.repository(database.states[name], self)
            setattr(self, name, repository)
            self._repositories.append(repository)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._discard()

    async def commit(self) -> None:
        async with self._database.lock:
            try:
                for repository in self._repositories:
                    repository._check()
            except Exception:
                # As in SQL, a failed commit ends the transaction: nothing survives it.
                self._discard()
                raise
            for repository in self._repositories:
                repository._commit()

    async def rollback(self) -> None:
        self._discard()

    def _discard(self) -> None:
        for repository in self._repositories:
            repository._rollback()


class InMemoryUnitOfWorkFactory(
    IdentityUnitOfWorkFactory,
    NotificationsUnitOfWorkFactory,
    BillingUnitOfWorkFactory,
    PaymentsUnitOfWorkFactory,
    ConversationsUnitOfWorkFactory,
):
    """Owns one `InMemoryDatabase` (`.database`); each call opens a unit of work on it.

    `jobs` is the outbox store to enqueue into (shared with the relay's `InMemoryOutbox`);
    a private one by default.
    """

    def __init__(self, jobs: InMemoryJobStore | None = None) -> None:
        given = {"jobs": jobs} if jobs is not None else {}
        self.database = InMemoryDatabase(TABLES, **given)

    def __call__(self, *, read_only: bool = False) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.database)

"""Subscriptions in process memory, transactional like the SQL table."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.memory.catalog import later_than
from adapters.memory.payments import UserExists
from adapters.memory.pending_rows import PendingRows, RowTable
from core.identity.errors import UserNotFoundError
from core.payments.model import Subscription, SubscriptionStatus
from core.payments.ports import SubscriptionRepository
from core.shared.errors import ConflictError


class InMemorySubscriptionState(RowTable[str, Subscription]):
    """The committed subscriptions, by gateway subscription id."""


def _newest(subscriptions: list[Subscription]) -> Subscription | None:
    return max(subscriptions, key=lambda s: s.id or 0, default=None)


class InMemorySubscriptionRepository(PendingRows[str, Subscription], SubscriptionRepository):
    """`SubscriptionRepository` over an `InMemorySubscriptionState` (contract: the port).

    `save` locks the gateway id until the unit ends, as the SQL upsert locks the row:
    a second unit saving the same subscription waits, then replaces what the first
    committed (keeping its id and `created_at`), so concurrent saves never collide.
    `lock` locks an existing subscription the same way. `user_exists` stands in for the
    foreign key (`UserNotFoundError`). "Newest" is the highest id.
    """

    def __init__(self, state: InMemorySubscriptionState, user_exists: UserExists) -> None:
        super().__init__(
            state,
            key=lambda subscription: subscription.gateway_subscription_id,
            # Unreachable while every write holds the row's lock (the upsert's guarantee).
            exists_error=ConflictError,
        )
        self._user_exists = user_exists

    async def lock(self, gateway_subscription_id: str) -> Subscription | None:
        if self._get(gateway_subscription_id) is None:
            return None
        await self._hold(gateway_subscription_id)
        return self._get(gateway_subscription_id)

    async def save(self, subscription: Subscription) -> Subscription:
        await self._hold(subscription.gateway_subscription_id)
        if not await self._user_exists(subscription.user_id):
            raise UserNotFoundError()
        current = self._get(subscription.gateway_subscription_id)
        if current is None:
            now = datetime.now(UTC)
            return self._insert(
                subscription.copy(id=next(self._table.ids), created_at=now, updated_at=now)
            )
        return self._replace(
            subscription.copy(
                id=current.id,
                created_at=current.created_at,
                updated_at=later_than(current.updated_at),
            )
        )

    async def current(self, user_id: int) -> Subscription | None:
        return _newest([s for s in self._rows() if s.user_id == user_id and not s.status.ended])

    async def latest(self, user_id: int) -> Subscription | None:
        return _newest([s for s in self._rows() if s.user_id == user_id])

    async def past_due_since_before(self, cutoff: datetime, limit: int) -> list[Subscription]:
        due = [
            s
            for s in self._rows()
            if s.status is SubscriptionStatus.PAST_DUE
            and s.past_due_since is not None
            and s.past_due_since < cutoff
        ]
        due.sort(key=lambda s: (s.past_due_since, s.id or 0))
        return due[: max(limit, 0)]

    async def scheduled_due(self, now: datetime, limit: int) -> list[Subscription]:
        due = [
            s
            for s in self._rows()
            if s.scheduled_tier_code is not None
            and s.current_period_end is not None
            and s.current_period_end <= now
        ]
        due.sort(key=lambda s: (s.current_period_end, s.id or 0))
        return due[: max(limit, 0)]

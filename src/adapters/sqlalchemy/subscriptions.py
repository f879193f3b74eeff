"""The SQL side of subscriptions: one row per gateway subscription, replaced whole by
each newer read of the gateway."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records import utcnow
from adapters.sqlalchemy.records_payments import SUBSCRIPTIONS_USER_FK, SubscriptionRecord
from adapters.sqlalchemy.returning import write
from adapters.sqlalchemy.upsert import upsert_insert
from core.identity.errors import UserNotFoundError
from core.payments.model import Subscription, SubscriptionStatus
from core.payments.ports import SubscriptionRepository

SUBSCRIPTION_CONSTRAINT_ERRORS: ConstraintErrors = {
    SUBSCRIPTIONS_USER_FK: UserNotFoundError,
}

_subscriptions = cast(Table, SubscriptionRecord.__table__)
_ENDED = [status.value for status in SubscriptionStatus if status.ended]


def _to_subscription(record: SubscriptionRecord | Row[Any]) -> Subscription:
    return Subscription(
        id=record.id,
        user_id=record.user_id,
        gateway_subscription_id=record.gateway_subscription_id,
        gateway_customer_id=record.gateway_customer_id,
        tier_code=record.tier_code,
        status=SubscriptionStatus(record.status),
        current_period_end=record.current_period_end,
        cancel_at_period_end=record.cancel_at_period_end,
        scheduled_tier_code=record.scheduled_tier_code,
        past_due_since=record.past_due_since,
        canceled_at=record.canceled_at,
        synced_at=record.synced_at,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _replaced(subscription: Subscription) -> dict[str, Any]:
    """Every column `save` replaces (all but the id, the gateway id and the times)."""
    return {
        "user_id": subscription.user_id,
        "gateway_customer_id": subscription.gateway_customer_id,
        "tier_code": subscription.tier_code,
        "status": subscription.status.value,
        "current_period_end": subscription.current_period_end,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "scheduled_tier_code": subscription.scheduled_tier_code,
        "past_due_since": subscription.past_due_since,
        "canceled_at": subscription.canceled_at,
        "synced_at": subscription.synced_at,
    }


class SqlAlchemySubscriptionRepository(SubscriptionRepository):
    """`SubscriptionRepository` on `subscriptions` (contract: the port).

    `save` is one `INSERT ... ON CONFLICT (gateway_subscription_id) DO UPDATE ...
    RETURNING` (Postgres and SQLite both have it): concurrent first saves never collide,
    the later one replaces what the earlier stored, and the row keeps its id and
    `created_at`. An unknown user is `UserNotFoundError`. `lock` is a `SELECT ... FOR
    UPDATE`. "Newest" is the highest id (the latest inserted).
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _first(self, statement: Select[Any]) -> Subscription | None:
        with database_errors():
            record = (await self._session.execute(statement.limit(1))).scalars().first()
        return _to_subscription(record) if record is not None else None

    async def _all(self, statement: Select[Any], limit: int) -> list[Subscription]:
        if limit < 1:
            return []
        with database_errors():
            records = (await self._session.execute(statement.limit(limit))).scalars().all()
        return [_to_subscription(record) for record in records]

    @staticmethod
    def _select() -> Select[Any]:
        return select(SubscriptionRecord).execution_options(populate_existing=True)

    async def lock(self, gateway_subscription_id: str) -> Subscription | None:
        # SELECT ... FOR UPDATE on Postgres; SQLite drops the clause, but its writers
        # run one at a time anyway (BEGIN IMMEDIATE).
        return await self._first(
            self._select()
            .where(SubscriptionRecord.gateway_subscription_id == gateway_subscription_id)
            .with_for_update()
        )

    async def save(self, subscription: Subscription) -> Subscription:
        now = utcnow()
        replaced = _replaced(subscription)
        dialect = self._session.get_bind().dialect.name
        statement = (
            upsert_insert(dialect, _subscriptions)
            .values(
                gateway_subscription_id=subscription.gateway_subscription_id,
                created_at=now,
                updated_at=now,
                **replaced,
            )
            .on_conflict_do_update(
                index_elements=[_subscriptions.c.gateway_subscription_id],
                set_={**replaced, "updated_at": now},
            )
            .returning(*_subscriptions.c)
        )
        row = await write(self._session, statement, SUBSCRIPTION_CONSTRAINT_ERRORS)
        assert row is not None
        return _to_subscription(row)

    async def current(self, user_id: int) -> Subscription | None:
        return await self._first(
            self._select()
            .where(SubscriptionRecord.user_id == user_id, SubscriptionRecord.status.not_in(_ENDED))
            .order_by(SubscriptionRecord.id.desc())
        )

    async def latest(self, user_id: int) -> Subscription | None:
        return await self._first(
            self._select()
            .where(SubscriptionRecord.user_id == user_id)
            .order_by(SubscriptionRecord.id.desc())
        )

    async def past_due_since_before(self, cutoff: datetime, limit: int) -> list[Subscription]:
        statement = (
            self._select()
            .where(
                SubscriptionRecord.status == SubscriptionStatus.PAST_DUE.value,
                SubscriptionRecord.past_due_since < cutoff,
            )
            .order_by(SubscriptionRecord.past_due_since, SubscriptionRecord.id)
        )
        return await self._all(statement, limit)

    async def scheduled_due(self, now: datetime, limit: int) -> list[Subscription]:
        statement = (
            self._select()
            .where(
                SubscriptionRecord.scheduled_tier_code.is_not(None),
                SubscriptionRecord.current_period_end <= now,
            )
            .order_by(SubscriptionRecord.current_period_end, SubscriptionRecord.id)
        )
        return await self._all(statement, limit)

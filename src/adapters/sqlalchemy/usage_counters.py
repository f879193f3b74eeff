"""The SQL side of the usage counters of limits: one row per user, limit and period,
counted by one conditional upsert."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import database_errors
from adapters.sqlalchemy.records import utcnow
from adapters.sqlalchemy.records_credits import UsageCounterRecord
from adapters.sqlalchemy.upsert import upsert_insert
from core.billing.model import check_usage_amount
from core.billing.ports import UsageCounters

_counters = cast(Table, UsageCounterRecord.__table__)


class SqlAlchemyUsageCounters(UsageCounters):
    """`UsageCounters` on `usage_counters` (contract: the port).

    `consume` is one upsert: `INSERT (..., used = :amount) ON CONFLICT (user_id, name,
    period_start) DO UPDATE SET used = used + :amount WHERE used + :amount <= :limit
    RETURNING used`. The insert case is checked before (`amount <= limit`, else no SQL
    at all); the update case by its WHERE, which Postgres evaluates on the committed row
    after waiting for its lock, and SQLite with writers one at a time. No row back: the
    limit would be passed, and nothing was counted.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def used(self, user_id: int, name: str, period_start: datetime) -> int:
        statement = select(_counters.c.used).where(
            _counters.c.user_id == user_id,
            _counters.c.name == name,
            _counters.c.period_start == period_start,
        )
        with database_errors():
            used = (await self._session.execute(statement)).scalar_one_or_none()
        return int(used or 0)

    async def used_in(self, user_id: int, periods: Mapping[str, datetime]) -> dict[str, int]:
        found = dict.fromkeys(periods, 0)
        if not periods:
            return found
        counters = _counters.c
        statement = select(counters.name, counters.used).where(
            counters.user_id == user_id,
            or_(
                *(
                    and_(counters.name == name, counters.period_start == start)
                    for name, start in periods.items()
                )
            ),
        )
        with database_errors():
            rows = (await self._session.execute(statement)).all()
        found.update({name: int(used) for name, used in rows})
        return found

    async def consume(
        self, user_id: int, name: str, period_start: datetime, amount: int, limit: int
    ) -> int | None:
        check_usage_amount(amount)
        if amount > limit:
            return None
        now = utcnow()
        added = _counters.c.used + amount
        statement = (
            upsert_insert(self._session.get_bind().dialect.name, _counters)
            .values(
                user_id=user_id, name=name, period_start=period_start, used=amount, updated_at=now
            )
            .on_conflict_do_update(
                index_elements=[_counters.c.user_id, _counters.c.name, _counters.c.period_start],
                set_={"used": added, "updated_at": now},
                where=added <= limit,
            )
            .returning(_counters.c.used)
        )
        with database_errors():
            used = (await self._session.execute(statement)).scalar_one_or_none()
        return int(used) if used is not None else None

"""The SQL side of the usage counters of limits: one row per user, limit and period,
counted by one conditional upsert."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from adapters.sqlalchemy.errors import database_errors
from adapters.sqlalchemy.prepared import PerDialect
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
        parameters: dict[str, object] = {"b_user_id": user_id}
        for index, (name, start) in enumerate(periods.items()):
            parameters[f"b_name_{index}"] = name
            parameters[f"b_start_{index}"] = start
        with database_errors():
            result = await self._session.execute(_used_in(len(periods)), parameters)
        rows = result.all()
        found.update({name: int(used) for name, used in rows})
        return found

    async def consume(
        self, user_id: int, name: str, period_start: datetime, amount: int, limit: int
    ) -> int | None:
        check_usage_amount(amount)
        if amount > limit:
            return None
        parameters = {
            "b_user_id": user_id,
            "b_name": name,
            "b_start": period_start,
            "b_amount": amount,
            "b_limit": limit,
            "b_now": utcnow(),
        }
        statement = _CONSUME(self._session.get_bind().dialect.name)
        with database_errors():
            used = (await self._session.execute(statement, parameters)).scalar_one_or_none()
        return int(used) if used is not None else None


def _consume_statement(dialect: str) -> ReturningInsert[Any]:
    columns = _counters.c
    amount = bindparam("b_amount", type_=columns.used.type)
    now = bindparam("b_now", type_=columns.updated_at.type)
    added = columns.used + amount
    return (
        upsert_insert(dialect, _counters)
        .values(
            user_id=bindparam("b_user_id"),
            name=bindparam("b_name"),
            period_start=bindparam("b_start", type_=columns.period_start.type),
            used=amount,
            updated_at=now,
        )
        .on_conflict_do_update(
            index_elements=[columns.user_id, columns.name, columns.period_start],
            set_={"used": added, "updated_at": now},
            where=added <= bindparam("b_limit", type_=columns.used.type),
        )
        .returning(columns.used)
    )


@functools.cache
def _used_in(count: int) -> Select[tuple[str, int]]:
    """The counters of `count` (name, period) pairs, built once per count: every send
    reads two."""
    columns = _counters.c
    start_type = columns.period_start.type
    return select(columns.name, columns.used).where(
        columns.user_id == bindparam("b_user_id"),
        or_(
            *(
                and_(
                    columns.name == bindparam(f"b_name_{index}"),
                    columns.period_start == bindparam(f"b_start_{index}", type_=start_type),
                )
                for index in range(count)
            )
        ),
    )


# Built once per dialect (`prepared`): every send counts twice.
_CONSUME = PerDialect(_consume_statement)

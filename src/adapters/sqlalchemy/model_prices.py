"""The SQL side of model prices: one row per model and `effective_from`, kept for good."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records import utcnow
from adapters.sqlalchemy.records_conversations import ModelPriceRecord
from adapters.sqlalchemy.returning import returning
from adapters.sqlalchemy.upsert import upsert_insert
from core.conversations.model import ModelPrice
from core.conversations.ports import ModelPriceRepository

# The upsert never collides on (model, effective_from); only the CHECKs can refuse.
PRICE_CONSTRAINT_ERRORS: ConstraintErrors = {}

_prices = cast(Table, ModelPriceRecord.__table__)
# Built once (`prepared`): every send reads its model's price.
_CURRENT = (
    select(_prices)
    .where(
        _prices.c.model == bindparam("b_model"),
        _prices.c.effective_from <= bindparam("b_at", type_=_prices.c.effective_from.type),
    )
    .order_by(_prices.c.effective_from.desc())
    .limit(1)
)


def _to_price(record: Row[Any]) -> ModelPrice:
    return ModelPrice(
        id=record.id,
        model=record.model,
        input_per_million=record.input_per_million,
        output_per_million=record.output_per_million,
        currency=record.currency,
        effective_from=record.effective_from,
    )


class SqlAlchemyModelPriceRepository(ModelPriceRepository):
    """`ModelPriceRepository` on `model_prices` (contract: the port).

    `save` is one `INSERT ... ON CONFLICT (model, effective_from) DO UPDATE ...
    RETURNING` (Postgres and SQLite both have it): a correction replaces the amounts
    and currency of the price it names and keeps its id; concurrent saves never
    collide. `current` reads the latest `effective_from` at or before the moment
    (the unique constraint's index); `all` sorts models by their bytes on every backend.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name

    async def save(self, price: ModelPrice) -> ModelPrice:
        now = utcnow()
        replaced = {
            "input_per_million": price.input_per_million,
            "output_per_million": price.output_per_million,
            "currency": price.currency,
        }
        statement = (
            upsert_insert(self._dialect, _prices)
            .values(
                model=price.model,
                effective_from=price.effective_from,
                created_at=now,
                updated_at=now,
                **replaced,
            )
            .on_conflict_do_update(
                index_elements=[_prices.c.model, _prices.c.effective_from],
                set_={**replaced, "updated_at": now},
            )
            .returning(*_prices.c)
        )
        row = await returning(self._session, statement, PRICE_CONSTRAINT_ERRORS)
        assert row is not None
        return _to_price(row)

    async def current(self, model: str, at: datetime) -> ModelPrice | None:
        with database_errors():
            result = await self._session.execute(_CURRENT, {"b_model": model, "b_at": at})
        row = result.first()
        return _to_price(row) if row is not None else None

    async def all(self) -> list[ModelPrice]:
        by_model: ColumnElement[str] = _prices.c.model
        if self._dialect == "postgresql":
            # A linguistic collation would otherwise skip `-` and `_` when comparing.
            by_model = by_model.collate("C")
        statement = select(_prices).order_by(by_model, _prices.c.effective_from)
        with database_errors():
            rows = (await self._session.execute(statement)).all()
        return [_to_price(row) for row in rows]

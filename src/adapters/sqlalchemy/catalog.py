"""The SQL side of the billing catalog: tiers and products, by code."""

from __future__ import annotations

import builtins
from abc import abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.billing_json import (
    boosts_from_json,
    boosts_to_json,
    features_from_json,
    features_to_json,
    limits_from_json,
    limits_to_json,
)
from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records_billing import (
    PRODUCTS_GATEWAY_PRICE_UNIQUE,
    PRODUCTS_PK,
    TIERS_GATEWAY_PRICE_UNIQUE,
    TIERS_PK,
    ProductRecord,
    TierRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from core.billing.errors import (
    ProductExistsError,
    ProductNotFoundError,
    TierExistsError,
    TierNotFoundError,
)
from core.billing.model import Product, ProductKind, Tier
from core.billing.ports import ProductRepository, TierRepository
from core.shared.errors import ConflictError, DomainError

TIER_CONSTRAINT_ERRORS: ConstraintErrors = {
    TIERS_PK: TierExistsError,
    TIERS_GATEWAY_PRICE_UNIQUE: lambda: ConflictError("Another tier has this gateway price id."),
}
PRODUCT_CONSTRAINT_ERRORS: ConstraintErrors = {
    PRODUCTS_PK: ProductExistsError,
    PRODUCTS_GATEWAY_PRICE_UNIQUE: lambda: ConflictError(
        "Another product has this gateway price id."
    ),
}

ItemT = TypeVar("ItemT", Tier, Product)
RecordT = TypeVar("RecordT", TierRecord, ProductRecord)


def _to_tier(record: TierRecord) -> Tier:
    return Tier(
        code=record.code,
        name=record.name,
        price=record.price,
        currency=record.currency,
        features=features_from_json(record.features),
        limits=limits_from_json(record.limits),
        gateway_price_id=record.gateway_price_id,
        public=record.public,
        rank=record.rank,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _tier_values(tier: Tier) -> dict[str, Any]:
    return {
        "name": tier.name,
        "price": tier.price,
        "currency": tier.currency,
        "features": features_to_json(tier.features),
        "limits": limits_to_json(tier.limits),
        "gateway_price_id": tier.gateway_price_id,
        "public": tier.public,
        "rank": tier.rank,
    }


def _to_product(record: ProductRecord) -> Product:
    return Product(
        code=record.code,
        name=record.name,
        kind=ProductKind(record.kind),
        price=record.price,
        currency=record.currency,
        recurring=record.recurring,
        credits=record.credits,
        features=features_from_json(record.features),
        limit_boosts=boosts_from_json(record.limit_boosts),
        gateway_price_id=record.gateway_price_id,
        active=record.active,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _product_values(product: Product) -> dict[str, Any]:
    return {
        "name": product.name,
        "kind": product.kind.value,
        "price": product.price,
        "currency": product.currency,
        "recurring": product.recurring,
        "credits": product.credits,
        "features": features_to_json(product.features),
        "limit_boosts": boosts_to_json(product.limit_boosts),
        "gateway_price_id": product.gateway_price_id,
        "active": product.active,
    }


class _SqlAlchemyCatalog(Generic[RecordT, ItemT]):
    """Get, add and update by code over one catalog table.

    The database decides a duplicate code (the primary key) or gateway price id (a
    unique constraint) at `add`, which flushes its INSERT, also against a concurrent
    unit (on Postgres the INSERT waits for it to end). `update` replaces every column
    but the code and `created_at`, and stamps `updated_at`.
    """

    record: ClassVar[type[Any]]
    constraint_errors: ClassVar[ConstraintErrors]

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records: SqlAlchemyRepository[Any] = SqlAlchemyRepository(
            session, self.record, constraint_errors=self.constraint_errors
        )

    @abstractmethod
    def _to_item(self, record: RecordT) -> ItemT: ...

    @abstractmethod
    def _values(self, item: ItemT) -> dict[str, Any]: ...

    @abstractmethod
    def _not_found(self) -> DomainError: ...

    async def get(self, code: str) -> ItemT | None:
        record = await self._records.get(code)
        return self._to_item(record) if record is not None else None

    async def add(self, item: ItemT) -> ItemT:
        record = await self._records.add(self.record(code=item.code, **self._values(item)))
        return self._to_item(record)

    async def update(self, item: ItemT) -> ItemT:
        record = await self._records.update(item.code, self._values(item))
        if record is None:
            raise self._not_found()
        return self._to_item(record)

    def _by_code(self) -> ColumnElement[str]:
        # Codes sort by their bytes on every backend, as in Python: a Postgres database
        # with a linguistic collation would otherwise skip `_` when comparing.
        column: ColumnElement[str] = self.record.code
        if self._session.get_bind().dialect.name == "postgresql":
            return column.collate("C")
        return column

    async def _select(
        self, *where: ColumnElement[bool], order_by: tuple[Any, ...]
    ) -> builtins.list[ItemT]:
        statement = (
            select(self.record)
            .where(*where)
            .order_by(*order_by)
            .execution_options(populate_existing=True)
        )
        with database_errors():
            records = (await self._session.execute(statement)).scalars().all()
        return [self._to_item(record) for record in records]


class SqlAlchemyTierRepository(_SqlAlchemyCatalog[TierRecord, Tier], TierRepository):
    """`TierRepository` on the `tiers` table (contract: the port). A gateway price id
    another tier has is a `ConflictError`."""

    record = TierRecord
    constraint_errors = TIER_CONSTRAINT_ERRORS

    def _to_item(self, record: TierRecord) -> Tier:
        return _to_tier(record)

    def _values(self, item: Tier) -> dict[str, Any]:
        return _tier_values(item)

    def _not_found(self) -> DomainError:
        return TierNotFoundError()

    async def list(self, *, public_only: bool = False) -> builtins.list[Tier]:
        where = [TierRecord.public.is_(True)] if public_only else []
        return await self._select(*where, order_by=(TierRecord.rank, self._by_code()))


class SqlAlchemyProductRepository(_SqlAlchemyCatalog[ProductRecord, Product], ProductRepository):
    """`ProductRepository` on the `products` table (contract: the port). A gateway price
    id another product has is a `ConflictError`."""

    record = ProductRecord
    constraint_errors = PRODUCT_CONSTRAINT_ERRORS

    def _to_item(self, record: ProductRecord) -> Product:
        return _to_product(record)

    def _values(self, item: Product) -> dict[str, Any]:
        return _product_values(item)

    def _not_found(self) -> DomainError:
        return ProductNotFoundError()

    async def list(self, *, active_only: bool = False) -> builtins.list[Product]:
        where = [ProductRecord.active.is_(True)] if active_only else []
        return await self._select(*where, order_by=(self._by_code(),))

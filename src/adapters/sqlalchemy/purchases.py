"""The SQL side of what users bought (`user_products`) and their enterprise overrides."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import CursorResult, delete, insert, or_, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.billing_json import (
    features_from_json,
    features_to_json,
    limits_from_json,
    limits_to_json,
)
from adapters.sqlalchemy.errors import ConstraintErrors, database_errors, violated_constraint
from adapters.sqlalchemy.records import Base, utcnow
from adapters.sqlalchemy.records_billing import (
    ENTERPRISE_OVERRIDES_USER_FK,
    USER_PRODUCTS_PRODUCT_FK,
    USER_PRODUCTS_REFERENCE_UNIQUE,
    USER_PRODUCTS_USER_FK,
    EnterpriseOverrideRecord,
    ProductRecord,
    UserProductRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.returning import is_sqlite_foreign_key_error
from core.billing.errors import ProductNotFoundError, PurchaseExistsError, PurchaseNotFoundError
from core.billing.model import EnterpriseOverride, Purchase, PurchaseStatus
from core.billing.ports import OverrideRepository, PurchaseRepository
from core.identity.errors import UserNotFoundError

PURCHASE_CONSTRAINT_ERRORS: ConstraintErrors = {
    USER_PRODUCTS_REFERENCE_UNIQUE: PurchaseExistsError,
    USER_PRODUCTS_USER_FK: UserNotFoundError,
    USER_PRODUCTS_PRODUCT_FK: ProductNotFoundError,
}
OVERRIDE_CONSTRAINT_ERRORS: ConstraintErrors = {
    ENTERPRISE_OVERRIDES_USER_FK: UserNotFoundError,
}

# Both dialects have INSERT ... ON CONFLICT DO UPDATE, each in its own Insert class.
_UPSERTS: dict[str, Callable[..., postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def _is_foreign_key_violation(error: sa_exc.IntegrityError, names: set[str]) -> bool:
    # Postgres names the constraint; SQLite does not (`is_sqlite_foreign_key_error`).
    if violated_constraint(error, Base.metadata) in names:
        return True
    return is_sqlite_foreign_key_error(error)


def _to_purchase(record: UserProductRecord) -> Purchase:
    return Purchase(
        id=record.id,
        user_id=record.user_id,
        product_code=record.product_code,
        reference=record.reference,
        quantity=record.quantity,
        status=PurchaseStatus(record.status),
        purchased_at=record.purchased_at,
        expires_at=record.expires_at,
    )


class SqlAlchemyPurchaseRepository(PurchaseRepository):
    """`PurchaseRepository` on the `user_products` table (contract: the port).

    The unique constraint on (user_id, reference) decides races: the loser's INSERT
    raises `PurchaseExistsError` (on Postgres after waiting for the winner's unit).
    `add` looks the product up first (`ProductNotFoundError`), so a foreign-key failure
    left is the user's (`UserNotFoundError`; SQLite does not name the key). `add`
    stamps `purchased_at` when it is None.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, UserProductRecord, constraint_errors=PURCHASE_CONSTRAINT_ERRORS
        )
        self._products = SqlAlchemyRepository(session, ProductRecord)

    async def add(self, purchase: Purchase) -> Purchase:
        if not await self._products.exists(code=purchase.product_code):
            raise ProductNotFoundError()
        now = utcnow()
        statement = (
            insert(UserProductRecord)
            .values(
                user_id=purchase.user_id,
                product_code=purchase.product_code,
                reference=purchase.reference,
                quantity=purchase.quantity,
                status=purchase.status.value,
                purchased_at=purchase.purchased_at or now,
                expires_at=purchase.expires_at,
                created_at=now,
                updated_at=now,
            )
            .returning(UserProductRecord)
        )
        with database_errors(PURCHASE_CONSTRAINT_ERRORS, Base.metadata):
            try:
                record = (await self._session.execute(statement)).scalar_one()
            except sa_exc.IntegrityError as error:
                if _is_foreign_key_violation(error, {USER_PRODUCTS_USER_FK}):
                    raise UserNotFoundError() from error
                raise
        return _to_purchase(record)

    async def find(self, user_id: int, reference: str) -> Purchase | None:
        record = await self._records.find_one(user_id=user_id, reference=reference)
        return _to_purchase(record) if record is not None else None

    async def list_active(self, user_id: int, now: datetime) -> list[Purchase]:
        statement = (
            select(UserProductRecord)
            .where(
                UserProductRecord.user_id == user_id,
                UserProductRecord.status == PurchaseStatus.ACTIVE.value,
                or_(UserProductRecord.expires_at.is_(None), UserProductRecord.expires_at > now),
            )
            .order_by(UserProductRecord.purchased_at, UserProductRecord.id)
            .execution_options(populate_existing=True)
        )
        with database_errors():
            records = (await self._session.execute(statement)).scalars().all()
        return [_to_purchase(record) for record in records]

    async def update(self, purchase: Purchase) -> Purchase:
        if purchase.id is None:
            raise PurchaseNotFoundError()
        record = await self._records.update(
            purchase.id, {"status": purchase.status.value, "expires_at": purchase.expires_at}
        )
        if record is None:
            raise PurchaseNotFoundError()
        return _to_purchase(record)


def _to_override(record: EnterpriseOverrideRecord) -> EnterpriseOverride:
    return EnterpriseOverride(
        user_id=record.user_id,
        features=features_from_json(record.features),
        limits=limits_from_json(record.limits),
        price_note=record.price_note,
        updated_at=record.updated_at,
    )


class SqlAlchemyOverrideRepository(OverrideRepository):
    """`OverrideRepository` on the `enterprise_overrides` table (contract: the port).

    `save` is one `INSERT ... ON CONFLICT (user_id) DO UPDATE ... RETURNING` (Postgres
    and SQLite both have it), so concurrent first saves never collide on the primary
    key: the later one replaces the row the earlier made. An unknown user trips the
    foreign key: `UserNotFoundError`.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, EnterpriseOverrideRecord, constraint_errors=OVERRIDE_CONSTRAINT_ERRORS
        )

    async def get(self, user_id: int) -> EnterpriseOverride | None:
        record = await self._records.get(user_id)
        return _to_override(record) if record is not None else None

    async def save(self, override: EnterpriseOverride) -> EnterpriseOverride:
        now = utcnow()
        terms = {
            "features": features_to_json(override.features),
            "limits": limits_to_json(override.limits),
            "price_note": override.price_note,
        }
        upsert = _UPSERTS[self._session.get_bind().dialect.name]
        statement = (
            upsert(EnterpriseOverrideRecord)
            .values(user_id=override.user_id, created_at=now, updated_at=now, **terms)
            .on_conflict_do_update(
                index_elements=[EnterpriseOverrideRecord.user_id],
                set_={**terms, "updated_at": now},
            )
            .returning(EnterpriseOverrideRecord)
            .execution_options(populate_existing=True)
        )
        with database_errors(OVERRIDE_CONSTRAINT_ERRORS, Base.metadata):
            try:
                record = (await self._session.execute(statement)).scalar_one()
            except sa_exc.IntegrityError as error:
                if _is_foreign_key_violation(error, {ENTERPRISE_OVERRIDES_USER_FK}):
                    raise UserNotFoundError() from error
                raise
        return _to_override(record)

    async def delete(self, user_id: int) -> bool:
        statement = (
            delete(EnterpriseOverrideRecord)
            .where(EnterpriseOverrideRecord.user_id == user_id)
            .execution_options(synchronize_session=False)
        )
        with database_errors():
            result = await self._session.execute(statement)
        assert isinstance(result, CursorResult)
        return bool(result.rowcount)

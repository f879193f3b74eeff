"""The SQL side of checkouts: each leaves `open` once, by one conditional UPDATE."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors
from adapters.sqlalchemy.records import utcnow
from adapters.sqlalchemy.records_payments import (
    CHECKOUTS_PK,
    CHECKOUTS_SESSION_UNIQUE,
    CHECKOUTS_USER_FK,
    CheckoutRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.returning import write
from core.identity.errors import UserNotFoundError
from core.payments.errors import CheckoutExistsError, CheckoutNotFoundError
from core.payments.model import Checkout, CheckoutKind, CheckoutStatus
from core.payments.ports import CheckoutRepository

CHECKOUT_CONSTRAINT_ERRORS: ConstraintErrors = {
    CHECKOUTS_PK: CheckoutExistsError,
    # A gateway session names one checkout.
    CHECKOUTS_SESSION_UNIQUE: CheckoutExistsError,
    CHECKOUTS_USER_FK: UserNotFoundError,
}

_checkouts = cast(Table, CheckoutRecord.__table__)
_OPEN = CheckoutStatus.OPEN.value


def _to_checkout(record: CheckoutRecord | Row[Any]) -> Checkout:
    return Checkout(
        id=record.id,
        user_id=record.user_id,
        kind=CheckoutKind(record.kind),
        code=record.code,
        status=CheckoutStatus(record.status),
        gateway_session_id=record.gateway_session_id,
        url=record.url,
        created_at=record.created_at,
        completed_at=record.completed_at,
    )


class SqlAlchemyCheckoutRepository(CheckoutRepository):
    """`CheckoutRepository` on `checkouts` (contract: the port).

    `add` is an INSERT in a SAVEPOINT (a taken id or gateway session id:
    `CheckoutExistsError`; an unknown user: `UserNotFoundError`). `update` of an
    unknown id is `CheckoutNotFoundError`. `complete` is one `UPDATE ... WHERE id = :id
    AND status = 'open' RETURNING`: a concurrent completer waits for the row lock, then
    the condition, evaluated again on the committed row, lets exactly one through.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, CheckoutRecord, constraint_errors=CHECKOUT_CONSTRAINT_ERRORS
        )

    async def get(self, checkout_id: str) -> Checkout | None:
        record = await self._records.get(checkout_id)
        return _to_checkout(record) if record is not None else None

    async def add(self, checkout: Checkout) -> Checkout:
        now = utcnow()
        statement = (
            insert(_checkouts)
            .values(
                id=checkout.id,
                user_id=checkout.user_id,
                kind=checkout.kind.value,
                code=checkout.code,
                status=checkout.status.value,
                gateway_session_id=checkout.gateway_session_id,
                url=checkout.url,
                completed_at=checkout.completed_at,
                created_at=now,
                updated_at=now,
            )
            .returning(*_checkouts.c)
        )
        row = await write(self._session, statement, CHECKOUT_CONSTRAINT_ERRORS, savepoint=True)
        assert row is not None
        return _to_checkout(row)

    async def update(self, checkout: Checkout) -> Checkout:
        statement = (
            update(_checkouts)
            .where(_checkouts.c.id == checkout.id)
            .values(
                status=checkout.status.value,
                gateway_session_id=checkout.gateway_session_id,
                url=checkout.url,
                completed_at=checkout.completed_at,
                updated_at=utcnow(),
            )
            .returning(*_checkouts.c)
        )
        row = await write(self._session, statement, CHECKOUT_CONSTRAINT_ERRORS)
        if row is None:
            raise CheckoutNotFoundError()
        return _to_checkout(row)

    async def complete(self, checkout_id: str, at: datetime) -> Checkout | None:
        statement = (
            update(_checkouts)
            .where(_checkouts.c.id == checkout_id, _checkouts.c.status == _OPEN)
            .values(status=CheckoutStatus.COMPLETED.value, completed_at=at, updated_at=utcnow())
            .returning(*_checkouts.c)
        )
        row = await write(self._session, statement, CHECKOUT_CONSTRAINT_ERRORS)
        return _to_checkout(row) if row is not None else None

"""The SQL side of payments: customers and payments (checkouts are in `checkouts.py`,
subscriptions in `subscriptions.py`, the event log and reconciliation runs in
`payment_events.py`).

Writes are single statements with `RETURNING`, so what a repository returns is what the
database stored. Adds run in a SAVEPOINT: a duplicate (the expected outcome of a retried
or concurrent delivery) raises its `...ExistsError` and leaves the unit usable.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records import utcnow
from adapters.sqlalchemy.records_payments import (
    PAYMENT_CUSTOMERS_GATEWAY_ID_UNIQUE,
    PAYMENT_CUSTOMERS_PK,
    PAYMENT_CUSTOMERS_USER_FK,
    PAYMENTS_REFERENCE_UNIQUE,
    PAYMENTS_USER_FK,
    CustomerRecord,
    PaymentRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.returning import write
from core.identity.errors import UserNotFoundError
from core.payments.errors import CustomerExistsError, PaymentExistsError, PaymentNotFoundError
from core.payments.model import Customer, Payment, PaymentKind, PaymentStatus
from core.payments.ports import CustomerRepository, PaymentRepository
from core.shared.query import Condition, ListQuery, Operator, Page, PageRequest, SortKey

CUSTOMER_CONSTRAINT_ERRORS: ConstraintErrors = {
    PAYMENT_CUSTOMERS_PK: CustomerExistsError,
    PAYMENT_CUSTOMERS_GATEWAY_ID_UNIQUE: CustomerExistsError,
    PAYMENT_CUSTOMERS_USER_FK: UserNotFoundError,
}
PAYMENT_CONSTRAINT_ERRORS: ConstraintErrors = {
    PAYMENTS_REFERENCE_UNIQUE: PaymentExistsError,
    PAYMENTS_USER_FK: UserNotFoundError,
}

_customers = cast(Table, CustomerRecord.__table__)
_payments = cast(Table, PaymentRecord.__table__)
# Ids follow the order payments were recorded in.
_NEWEST_FIRST = (SortKey("id", descending=True),)


def _to_customer(record: CustomerRecord | Row[Any]) -> Customer:
    return Customer(
        user_id=record.user_id,
        gateway_customer_id=record.gateway_customer_id,
        created_at=record.created_at,
    )


class SqlAlchemyCustomerRepository(CustomerRepository):
    """`CustomerRepository` on `payment_customers` (contract: the port).

    The primary key (the user) and the unique customer id decide races: the loser's
    INSERT raises `CustomerExistsError` (on Postgres after waiting for the winner's
    unit), in a SAVEPOINT so the unit can go on and read the winner's customer. An
    unknown user is `UserNotFoundError`. `add` stamps `created_at`.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, CustomerRecord, constraint_errors=CUSTOMER_CONSTRAINT_ERRORS
        )

    async def get(self, user_id: int) -> Customer | None:
        record = await self._records.get(user_id)
        return _to_customer(record) if record is not None else None

    async def by_gateway_id(self, gateway_customer_id: str) -> Customer | None:
        record = await self._records.find_one(gateway_customer_id=gateway_customer_id)
        return _to_customer(record) if record is not None else None

    async def add(self, customer: Customer) -> Customer:
        now = utcnow()
        statement = (
            insert(_customers)
            .values(
                user_id=customer.user_id,
                gateway_customer_id=customer.gateway_customer_id,
                created_at=now,
                updated_at=now,
            )
            .returning(*_customers.c)
        )
        row = await write(self._session, statement, CUSTOMER_CONSTRAINT_ERRORS, savepoint=True)
        assert row is not None
        return _to_customer(row)


def _to_payment(record: PaymentRecord | Row[Any]) -> Payment:
    return Payment(
        id=record.id,
        user_id=record.user_id,
        reference=record.reference,
        kind=PaymentKind(record.kind),
        amount=record.amount,
        currency=record.currency,
        status=PaymentStatus(record.status),
        product_code=record.product_code,
        tier_code=record.tier_code,
        gateway_payment_id=record.gateway_payment_id,
        gateway_subscription_id=record.gateway_subscription_id,
        amount_refunded=record.amount_refunded,
        credits_granted=record.credits_granted,
        credits_reversed=record.credits_reversed,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _payment_values(payment: Payment) -> dict[str, Any]:
    """Every column `update` replaces (all but id, reference and created_at)."""
    return {
        "user_id": payment.user_id,
        "kind": payment.kind.value,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status.value,
        "product_code": payment.product_code,
        "tier_code": payment.tier_code,
        "gateway_payment_id": payment.gateway_payment_id,
        "gateway_subscription_id": payment.gateway_subscription_id,
        "amount_refunded": payment.amount_refunded,
        "credits_granted": payment.credits_granted,
        "credits_reversed": payment.credits_reversed,
    }


class SqlAlchemyPaymentRepository(PaymentRepository):
    """`PaymentRepository` on `payments` (contract: the port).

    The unique reference decides races: the loser's INSERT raises `PaymentExistsError`
    (in a SAVEPOINT; on Postgres after waiting for the winner's unit). `lock` is a
    `SELECT ... FOR UPDATE`. `update` addresses the row by reference (unknown:
    `PaymentNotFoundError`). CHECKs keep refunds within the amount and reversed credits
    within those granted: a write past them is a `ConflictError`.
    `by_gateway_payment` returns the first recorded payment of a payment intent.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, PaymentRecord, constraint_errors=PAYMENT_CONSTRAINT_ERRORS
        )

    async def lock(self, reference: str) -> Payment | None:
        # SELECT ... FOR UPDATE on Postgres; SQLite drops the clause, but its writers
        # run one at a time anyway (BEGIN IMMEDIATE).
        statement = (
            select(PaymentRecord)
            .where(PaymentRecord.reference == reference)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        with database_errors():
            record = (await self._session.execute(statement)).scalars().first()
        return _to_payment(record) if record is not None else None

    async def by_gateway_payment(self, gateway_payment_id: str) -> Payment | None:
        record = await self._records.find_one(gateway_payment_id=gateway_payment_id)
        return _to_payment(record) if record is not None else None

    async def add(self, payment: Payment) -> Payment:
        now = utcnow()
        statement = (
            insert(_payments)
            .values(
                reference=payment.reference,
                created_at=now,
                updated_at=now,
                **_payment_values(payment),
            )
            .returning(*_payments.c)
        )
        row = await write(self._session, statement, PAYMENT_CONSTRAINT_ERRORS, savepoint=True)
        assert row is not None
        return _to_payment(row)

    async def update(self, payment: Payment) -> Payment:
        statement = (
            update(_payments)
            .where(_payments.c.reference == payment.reference)
            .values(updated_at=utcnow(), **_payment_values(payment))
            .returning(*_payments.c)
        )
        row = await write(self._session, statement, PAYMENT_CONSTRAINT_ERRORS)
        if row is None:
            raise PaymentNotFoundError()
        return _to_payment(row)

    async def for_user(self, user_id: int, page: PageRequest) -> Page[Payment]:
        query = ListQuery(
            conditions=(Condition("user_id", Operator.EQ, user_id),), sort=_NEWEST_FIRST, page=page
        )
        found = await self._records.list(query)
        return Page(
            items=[_to_payment(record) for record in found.items], next_cursor=found.next_cursor
        )

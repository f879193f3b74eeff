"""Payment customers, checkouts and payments in process memory, transactional like the
SQL tables (subscriptions are in `subscriptions.py`, the event log in
`payment_events.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from adapters.memory.catalog import later_than
from adapters.memory.pending_rows import PendingRows, RowTable, Unique
from adapters.memory.query import QueryEvaluator, dataclass_field_types
from core.identity.errors import UserNotFoundError
from core.payments.errors import (
    CheckoutExistsError,
    CheckoutNotFoundError,
    CustomerExistsError,
    PaymentExistsError,
    PaymentNotFoundError,
)
from core.payments.model import Checkout, CheckoutStatus, Customer, Payment
from core.payments.ports import CheckoutRepository, CustomerRepository, PaymentRepository
from core.shared.errors import ConflictError
from core.shared.query import Condition, ListQuery, Operator, Page, PageRequest, SortKey

UserExists = Callable[[int], Awaitable[bool]]

_PAYMENT_QUERIES = QueryEvaluator(dataclass_field_types(Payment), pk="id")
_NEWEST_FIRST = (SortKey("id", descending=True),)


class InMemoryCustomerState(RowTable[int, Customer]):
    """The committed customers, by user id."""


class InMemoryCheckoutState(RowTable[str, Checkout]):
    """The committed checkouts, by id."""


class InMemoryPaymentState(RowTable[str, Payment]):
    """The committed payments, by reference."""


async def _need_user(user_exists: UserExists, user_id: int) -> None:
    # What the SQL foreign key checks: the user row exists, as this unit sees it.
    if not await user_exists(user_id):
        raise UserNotFoundError()


class InMemoryCustomerRepository(PendingRows[int, Customer], CustomerRepository):
    """`CustomerRepository` over an `InMemoryCustomerState` (contract: the port).

    The user and the customer id are each unique: checked at `add` and again at commit
    (`CustomerExistsError`). `user_exists` stands in for the foreign key
    (`UserNotFoundError`). `add` stamps `created_at`.
    """

    def __init__(self, state: InMemoryCustomerState, user_exists: UserExists) -> None:
        super().__init__(
            state,
            key=lambda customer: customer.user_id,
            exists_error=CustomerExistsError,
            uniques=(Unique(lambda customer: customer.gateway_customer_id, CustomerExistsError),),
        )
        self._user_exists = user_exists

    async def get(self, user_id: int) -> Customer | None:
        return self._get(user_id)

    async def by_gateway_id(self, gateway_customer_id: str) -> Customer | None:
        return next((c for c in self._rows() if c.gateway_customer_id == gateway_customer_id), None)

    async def add(self, customer: Customer) -> Customer:
        stored = Customer(
            user_id=customer.user_id,
            gateway_customer_id=customer.gateway_customer_id,
            created_at=datetime.now(UTC),
        )
        # In this order, as in SQL: the unique index refuses before the foreign key.
        self._refuse_duplicate(stored)
        await _need_user(self._user_exists, customer.user_id)
        return self._insert(stored)


class InMemoryCheckoutRepository(PendingRows[str, Checkout], CheckoutRepository):
    """`CheckoutRepository` over an `InMemoryCheckoutState` (contract: the port).

    The id and a gateway session id are unique (`CheckoutExistsError`, at the write and
    at commit). `update` and `complete` lock the checkout until the unit ends, as the
    SQL UPDATE locks the row: a second completer waits, then finds it completed and
    gets None, so exactly one wins however units interleave.
    """

    def __init__(self, state: InMemoryCheckoutState, user_exists: UserExists) -> None:
        super().__init__(
            state,
            key=lambda checkout: checkout.id,
            exists_error=CheckoutExistsError,
            uniques=(Unique(lambda checkout: checkout.gateway_session_id, CheckoutExistsError),),
        )
        self._user_exists = user_exists

    async def get(self, checkout_id: str) -> Checkout | None:
        return self._get(checkout_id)

    async def add(self, checkout: Checkout) -> Checkout:
        stored = checkout.copy(created_at=datetime.now(UTC))
        self._refuse_duplicate(stored)
        await _need_user(self._user_exists, checkout.user_id)
        return self._insert(stored)

    async def _locked(self, checkout_id: str) -> Checkout | None:
        """Lock the checkout (if it exists), then read it again."""
        if self._get(checkout_id) is None:
            return None
        await self._hold(checkout_id)
        return self._get(checkout_id)

    async def update(self, checkout: Checkout) -> Checkout:
        current = await self._locked(checkout.id)
        if current is None:
            raise CheckoutNotFoundError()
        return self._replace(
            current.copy(
                status=checkout.status,
                gateway_session_id=checkout.gateway_session_id,
                url=checkout.url,
                completed_at=checkout.completed_at,
            )
        )

    async def complete(self, checkout_id: str, at: datetime) -> Checkout | None:
        current = await self._locked(checkout_id)
        if current is None or current.status is not CheckoutStatus.OPEN:
            return None
        return self._replace(current.copy(status=CheckoutStatus.COMPLETED, completed_at=at))


def _check_amounts(payment: Payment) -> None:
    # The SQL table's CHECKs (the model checks each amount is 0 or more).
    if payment.amount_refunded > payment.amount:
        raise ConflictError("A payment cannot refund more than its amount.")
    if payment.credits_reversed > payment.credits_granted:
        raise ConflictError("A payment cannot reverse more credits than it granted.")


class InMemoryPaymentRepository(PendingRows[str, Payment], PaymentRepository):
    """`PaymentRepository` over an `InMemoryPaymentState` (contract: the port).

    The reference is unique (`PaymentExistsError`, at `add` and at commit). `lock` and
    `update` lock the payment until the unit ends, as `SELECT ... FOR UPDATE` and an
    UPDATE do. Refunds beyond the amount, or reversed credits beyond those granted, are
    a `ConflictError` (the SQL CHECKs). `by_gateway_payment` returns the first recorded
    payment of a payment intent.
    """

    def __init__(self, state: InMemoryPaymentState, user_exists: UserExists) -> None:
        super().__init__(
            state, key=lambda payment: payment.reference, exists_error=PaymentExistsError
        )
        self._user_exists = user_exists

    async def lock(self, reference: str) -> Payment | None:
        if self._get(reference) is None:
            return None
        await self._hold(reference)
        return self._get(reference)

    async def by_gateway_payment(self, gateway_payment_id: str) -> Payment | None:
        found = [p for p in self._rows() if p.gateway_payment_id == gateway_payment_id]
        return min(found, key=lambda p: p.id or 0, default=None)

    async def add(self, payment: Payment) -> Payment:
        self._refuse_duplicate(payment)
        await _need_user(self._user_exists, payment.user_id)
        _check_amounts(payment)
        now = datetime.now(UTC)
        return self._insert(payment.copy(id=next(self._table.ids), created_at=now, updated_at=now))

    async def update(self, payment: Payment) -> Payment:
        current = await self.lock(payment.reference)
        if current is None:
            raise PaymentNotFoundError()
        await _need_user(self._user_exists, payment.user_id)
        _check_amounts(payment)
        return self._replace(
            payment.copy(
                id=current.id,
                created_at=current.created_at,
                updated_at=later_than(current.updated_at),
            )
        )

    async def for_user(self, user_id: int, page: PageRequest) -> Page[Payment]:
        query = ListQuery(
            conditions=(Condition("user_id", Operator.EQ, user_id),), sort=_NEWEST_FIRST, page=page
        )
        found = _PAYMENT_QUERIES.page(self._rows(), query)
        return Page(items=found.items, next_cursor=found.next_cursor)

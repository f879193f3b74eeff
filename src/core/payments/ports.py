"""What payments need from the outside world: the gateway, the webhook verifier, and
the records in a `PaymentsUnitOfWork`.

Every repository is used inside a unit of work; nothing is durable before commit.
Driver failures raise `UnavailableError`. The payments unit reaches the identity and
billing repositories too, so an event's effects (a tier, credits, a purchase, audit
entries, mail jobs) commit in the one transaction that stores the event.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from core.billing.ports import BillingUnitOfWork
from core.identity.ports import IdentityUnitOfWork
from core.payments.model import (
    Checkout,
    CheckoutRequest,
    Customer,
    GatewayEvent,
    GatewaySubscription,
    HostedPage,
    Payment,
    Reconciliation,
    StoredEvent,
    Subscription,
)
from core.shared.query import Page, PageRequest


class PaymentGateway(Protocol):
    """A payment provider (Stripe, or the in-process fake).

    Every call has a timeout; a gateway that is down or too slow raises
    `UnavailableError` (after bounded retries of what is safe to retry); a declined
    card `PaymentDeclinedError`; a request it refuses as invalid `GatewayRequestError`.
    Calls that create or change something carry `idempotency_key` (derived from
    Portico's own ids), so a retried call never creates or changes anything twice.

    - `create_customer`: a new customer for the user; returns its id.
    - `create_checkout`: a hosted checkout session; its `url` is where to send the user.
    - `create_portal`: a customer portal session (manage the subscription and cards).
    - `get_subscription`: the subscription as it is now, or None when unknown.
    - `cancel_subscription`: at the end of the paid period, or now.
    - `resume_subscription`: undo a cancellation at period end.
      Both raise `SubscriptionNotFoundError` for a subscription the gateway does not
      know, and return the subscription as it is after the change.
    - `events_since(since, limit)`: the events created at or after `since`, oldest
      first, at most `limit` (Stripe lists newest first, so its adapter reads back to
      `since`: keep `since` recent).
    - `get_event(id)`: one event, or None.
    """

    @abstractmethod
    async def create_customer(self, *, user_id: int, email: str, idempotency_key: str) -> str: ...

    @abstractmethod
    async def create_checkout(
        self, request: CheckoutRequest, *, idempotency_key: str
    ) -> HostedPage: ...

    @abstractmethod
    async def create_portal(
        self, *, customer_id: str, return_url: str, site_url: str
    ) -> HostedPage: ...

    @abstractmethod
    async def get_subscription(self, subscription_id: str) -> GatewaySubscription | None: ...

    @abstractmethod
    async def cancel_subscription(
        self, subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> GatewaySubscription: ...

    @abstractmethod
    async def resume_subscription(
        self, subscription_id: str, *, idempotency_key: str
    ) -> GatewaySubscription: ...

    @abstractmethod
    async def events_since(self, since: datetime, *, limit: int) -> list[GatewayEvent]: ...

    @abstractmethod
    async def get_event(self, event_id: str) -> GatewayEvent | None: ...


class WebhookVerifier(Protocol):
    """Turns a webhook delivery into a `GatewayEvent`, or refuses it.

    `verify(payload, signature, now)`: the signature must match `payload` (the raw body,
    byte for byte) under the configured secret, and the signed timestamp must be within
    the tolerance of `now` on either side; otherwise `InvalidWebhookError` (code
    `invalid_signature` or `stale_timestamp`). A verified body that is not an event
    raises it with code `malformed_event`. Pure computation: no I/O.

    `parse(event)`: a stored event's payload (verified when it arrived) read again, for
    a replay; `InvalidWebhookError` (`malformed_event`) when it is not an event.
    """

    @abstractmethod
    def verify(self, payload: bytes, signature: str | None, now: datetime) -> GatewayEvent: ...

    @abstractmethod
    def parse(self, event: Mapping[str, Any]) -> GatewayEvent: ...


class CustomerRepository(Protocol):
    """Users' gateway customers. `add` raises `CustomerExistsError` when the user (or the
    customer id) has one already, also when a concurrent add wins."""

    @abstractmethod
    async def get(self, user_id: int) -> Customer | None: ...

    @abstractmethod
    async def by_gateway_id(self, gateway_customer_id: str) -> Customer | None: ...

    @abstractmethod
    async def add(self, customer: Customer) -> Customer: ...


class CheckoutRepository(Protocol):
    """Checkouts Portico started. `add` stamps `created_at` and raises
    `CheckoutExistsError` for a taken id; `update` writes the status, gateway session
    id, url and `completed_at`; `complete(id, at)` moves an open checkout to completed
    in one conditional update and returns it, or None when it was not open (so of
    concurrent completions exactly one wins)."""

    @abstractmethod
    async def get(self, checkout_id: str) -> Checkout | None: ...

    @abstractmethod
    async def add(self, checkout: Checkout) -> Checkout: ...

    @abstractmethod
    async def update(self, checkout: Checkout) -> Checkout: ...

    @abstractmethod
    async def complete(self, checkout_id: str, at: datetime) -> Checkout | None: ...


class SubscriptionRepository(Protocol):
    """Subscriptions by gateway id.

    - `lock(gateway_id)`: the subscription, locked for the rest of the unit (a row lock
      where the database has them), or None.
    - `save`: inserts (assigning `id`, stamping `created_at`) or replaces every field
      of the one with this gateway id (stamping `updated_at`).
    - `current(user_id)`: the user's subscription that is not ended (`status.ended`),
      the newest if several; None when there is none.
    - `latest(user_id)`: the user's newest subscription, ended or not.
    - `past_due_since_before(cutoff, limit)`: past-due subscriptions whose
      `past_due_since` is before `cutoff`, oldest first.
    - `scheduled_due(now, limit)`: subscriptions with a `scheduled_tier_code` whose
      `current_period_end` is at or before `now`.
    """

    @abstractmethod
    async def lock(self, gateway_subscription_id: str) -> Subscription | None: ...

    @abstractmethod
    async def save(self, subscription: Subscription) -> Subscription: ...

    @abstractmethod
    async def current(self, user_id: int) -> Subscription | None: ...

    @abstractmethod
    async def latest(self, user_id: int) -> Subscription | None: ...

    @abstractmethod
    async def past_due_since_before(self, cutoff: datetime, limit: int) -> list[Subscription]: ...

    @abstractmethod
    async def scheduled_due(self, now: datetime, limit: int) -> list[Subscription]: ...


class PaymentRepository(Protocol):
    """Payments, by `reference` (unique).

    - `lock(reference)`: the payment, locked for the rest of the unit, or None.
    - `by_gateway_payment(gateway_payment_id)`: the payment with that payment intent.
    - `add` assigns `id`, stamps the times, raises `PaymentExistsError` for a taken
      reference (also when a concurrent add wins); `update` replaces every field but
      `id`, `reference` and `created_at`.
    - `for_user(user_id, page)`: newest first, cursor pagination.
    """

    @abstractmethod
    async def lock(self, reference: str) -> Payment | None: ...

    @abstractmethod
    async def by_gateway_payment(self, gateway_payment_id: str) -> Payment | None: ...

    @abstractmethod
    async def add(self, payment: Payment) -> Payment: ...

    @abstractmethod
    async def update(self, payment: Payment) -> Payment: ...

    @abstractmethod
    async def for_user(self, user_id: int, page: PageRequest) -> Page[Payment]: ...


class WebhookEventRepository(Protocol):
    """The event log: every verified event, once, by its gateway id.

    - `add` stamps `received_at` and raises `EventExistsError` for an id that is stored
      (also when a concurrent add wins, at the latest at commit: the unique constraint
      decides).
    - `get(id)`: the stored event, or None.
    - `update` writes `outcome`, `processed_at`, `error` and `attempts`.
    - `list(page)`: newest `created` first, cursor pagination.
    """

    @abstractmethod
    async def get(self, event_id: str) -> StoredEvent | None: ...

    @abstractmethod
    async def add(self, event: StoredEvent) -> StoredEvent: ...

    @abstractmethod
    async def update(self, event: StoredEvent) -> StoredEvent: ...

    @abstractmethod
    async def list(self, page: PageRequest) -> Page[StoredEvent]: ...


class ReconciliationLog(Protocol):
    """`reconcile` runs: `add` assigns `id`; `last()` is the run with the latest `until`."""

    @abstractmethod
    async def add(self, run: Reconciliation) -> Reconciliation: ...

    @abstractmethod
    async def last(self) -> Reconciliation | None: ...


class PaymentsUnitOfWork(BillingUnitOfWork, IdentityUnitOfWork, Protocol):
    """A transaction over the payment records and everything an event changes: users
    (their tier), the credit ledger and purchases, the audit trail and the outbox."""

    customers: CustomerRepository
    checkouts: CheckoutRepository
    subscriptions: SubscriptionRepository
    payments: PaymentRepository
    webhook_events: WebhookEventRepository
    reconciliations: ReconciliationLog


class PaymentsUnitOfWorkFactory(Protocol):
    """Opens a new `PaymentsUnitOfWork` per call (`read_only` as for identity)."""

    @abstractmethod
    def __call__(self, *, read_only: bool = False) -> PaymentsUnitOfWork: ...

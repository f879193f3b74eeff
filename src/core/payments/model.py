"""Payments: the gateway's customers, checkouts, subscriptions and payments as Portico
keeps them, and the gateway's events as the core sees them.

Money is an integer of micro-units of `currency` (1 USD = 1_000_000), as in billing; the
gateway adapter converts from the gateway's minor units. Gateway ids (`cus_...`,
`sub_...`, `in_...`) are opaque strings; times are aware datetimes in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.shared.errors import RuleViolationError
from core.shared.money import check_currency

MAX_GATEWAY_ID_LENGTH = 255


def check_gateway_id(value: str, what: str = "gateway id") -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_GATEWAY_ID_LENGTH:
        raise RuleViolationError(f"A {what} has 1 to 255 characters.")
    return value


def _check_amount(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleViolationError(f"A {what} is a whole number, 0 or more.")
    return value


# --- what Portico keeps --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Customer:
    """The gateway's customer for a user: one each way (a user has at most one)."""

    user_id: int
    gateway_customer_id: str
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        check_gateway_id(self.gateway_customer_id, "customer id")


class CheckoutKind(StrEnum):
    TIER = "tier"  # a subscription to a tier
    CREDIT_PACK = "credit_pack"  # a one-time credit pack


class CheckoutStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class Checkout:
    """A hosted checkout Portico started for a user: `id` is ours (random, unguessable;
    the gateway gets it as the session's client reference and as the idempotency key);
    `code` is the tier or the credit pack bought."""

    id: str
    user_id: int
    kind: CheckoutKind
    code: str
    status: CheckoutStatus = CheckoutStatus.OPEN
    gateway_session_id: str | None = None
    url: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None

    def __post_init__(self) -> None:
        check_gateway_id(self.id, "checkout id")
        object.__setattr__(self, "kind", CheckoutKind(self.kind))
        object.__setattr__(self, "status", CheckoutStatus(self.status))

    def copy(self, **changes: object) -> Checkout:
        return replace(self, **changes)  # type: ignore[arg-type]


class SubscriptionStatus(StrEnum):
    """The gateway's subscription states (Stripe's names)."""

    INCOMPLETE = "incomplete"  # the first payment has not gone through yet
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"  # a renewal failed; the gateway retries
    UNPAID = "unpaid"  # retries exhausted, kept open
    CANCELED = "canceled"  # over, for good
    PAUSED = "paused"

    @property
    def ended(self) -> bool:
        """No way back from here: a later snapshot in any other state is older news."""
        return self in (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A user's subscription to a tier, as last read from the gateway.

    `tier_code` is the tier the user has from it now; `scheduled_tier_code` a lower tier
    the gateway already bills that takes effect at `current_period_end` (a downgrade
    waits for the end of the paid period). `past_due_since` is when a renewal first
    failed (the grace period counts from it). `synced_at` is when the gateway state
    stored here was read: an older read never overwrites a newer one.
    """

    user_id: int
    gateway_subscription_id: str
    gateway_customer_id: str
    tier_code: str
    status: SubscriptionStatus
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    scheduled_tier_code: str | None = None
    past_due_since: datetime | None = None
    canceled_at: datetime | None = None
    synced_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        check_gateway_id(self.gateway_subscription_id, "subscription id")
        check_gateway_id(self.gateway_customer_id, "customer id")
        object.__setattr__(self, "status", SubscriptionStatus(self.status))

    def copy(self, **changes: object) -> Subscription:
        return replace(self, **changes)  # type: ignore[arg-type]


class PaymentKind(StrEnum):
    SUBSCRIPTION = "subscription"  # an invoice of a subscription
    CREDIT_PACK = "credit_pack"  # a one-time checkout


class PaymentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


@dataclass(frozen=True, slots=True)
class Payment:
    """Money that moved (or failed to): one per invoice or one-time checkout.

    `reference` is the gateway object it stands for (`in_...`, `cs_...`), unique;
    `gateway_payment_id` the payment intent (what refunds name). `credits_granted` and
    `credits_reversed` say what a credit pack's payment did to the ledger, so a refund
    takes back at most what was given, once per refunded amount.
    """

    user_id: int
    reference: str
    kind: PaymentKind
    amount: int
    currency: str
    status: PaymentStatus
    product_code: str | None = None
    tier_code: str | None = None
    gateway_payment_id: str | None = None
    gateway_subscription_id: str | None = None
    amount_refunded: int = 0
    credits_granted: int = 0
    credits_reversed: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        check_gateway_id(self.reference, "payment reference")
        object.__setattr__(self, "kind", PaymentKind(self.kind))
        object.__setattr__(self, "status", PaymentStatus(self.status))
        object.__setattr__(self, "currency", check_currency(self.currency))
        for name in ("amount", "amount_refunded", "credits_granted", "credits_reversed"):
            _check_amount(getattr(self, name), name)

    def copy(self, **changes: object) -> Payment:
        return replace(self, **changes)  # type: ignore[arg-type]


class EventOutcome(StrEnum):
    APPLIED = "applied"  # its effects are in
    IGNORED = "ignored"  # a type Portico does not act on: stored and acknowledged
    FAILED = "failed"  # could not be applied (see `error`); `replay` tries again


class EventSource(StrEnum):
    WEBHOOK = "webhook"
    RECONCILE = "reconcile"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A gateway event as received, kept for good: the log `replay` reads."""

    id: str
    type: str
    created: datetime
    payload: Mapping[str, Any]
    source: EventSource
    outcome: EventOutcome
    received_at: datetime | None = None
    processed_at: datetime | None = None
    error: str | None = None
    attempts: int = 1

    def __post_init__(self) -> None:
        check_gateway_id(self.id, "event id")
        object.__setattr__(self, "source", EventSource(self.source))
        object.__setattr__(self, "outcome", EventOutcome(self.outcome))

    def copy(self, **changes: object) -> StoredEvent:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """One `reconcile` run: the gateway's events from `since` to `until` were listed;
    `found` of them, `applied` new ones."""

    since: datetime
    until: datetime
    found: int
    applied: int
    id: int | None = None


# --- what the gateway says -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewaySubscription:
    """A subscription as the gateway has it now (read by the gateway adapter)."""

    id: str
    customer_id: str
    status: SubscriptionStatus
    price_id: str | None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", SubscriptionStatus(self.status))


class CheckoutMode(StrEnum):
    PAYMENT = "payment"  # one-time
    SUBSCRIPTION = "subscription"


@dataclass(frozen=True, slots=True)
class CheckoutCompleted:
    """`checkout.session.completed`: `reference` is our checkout id."""

    session_id: str
    reference: str | None
    customer_id: str | None
    mode: CheckoutMode
    paid: bool
    amount_total: int
    currency: str
    subscription_id: str | None = None
    payment_id: str | None = None


@dataclass(frozen=True, slots=True)
class InvoiceSettled:
    """`invoice.paid` (`paid`) or `invoice.payment_failed` (not `paid`)."""

    invoice_id: str
    customer_id: str
    paid: bool
    amount: int
    currency: str
    subscription_id: str | None = None
    payment_id: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionChanged:
    """`customer.subscription.created|updated|deleted`: the subscription as the event
    carried it (the service reads the current one from the gateway)."""

    subscription: GatewaySubscription


@dataclass(frozen=True, slots=True)
class ChargeRefunded:
    """`charge.refunded`: `amount_refunded` is the total refunded so far (it only grows)."""

    charge_id: str
    payment_id: str | None
    amount: int
    amount_refunded: int
    currency: str


EventSubject = CheckoutCompleted | InvoiceSettled | SubscriptionChanged | ChargeRefunded


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A verified event from the gateway: `subject` is what Portico reads from it (None
    for a type it does not act on); `payload` the event as sent, kept as it is."""

    id: str
    type: str
    created: datetime
    payload: Mapping[str, Any]
    subject: EventSubject | None = None


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    """What a hosted checkout sells: one `price_id` (a tier's recurring price in
    `SUBSCRIPTION` mode, a credit pack's in `PAYMENT` mode) to `customer_id`.

    `reference` is our checkout id (the gateway keeps it as the client reference; the
    idempotency key derives from it). `site_url` is the base URL the customer came
    from: a gateway that serves its own pages there (the fake) builds its URL from it.
    `amount`, `currency` and `description` are what Portico's catalog says: a gateway
    with no price list of its own (the fake) charges and shows them; Stripe charges what
    its price says.
    """

    reference: str
    customer_id: str
    mode: CheckoutMode
    price_id: str
    success_url: str
    cancel_url: str
    site_url: str
    amount: int = 0
    currency: str = "usd"
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HostedPage:
    """A page hosted by the gateway: a checkout session (`id`) or a portal session."""

    id: str
    url: str

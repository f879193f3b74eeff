"""Stripe events (JSON as Stripe sends them) read into the core's `GatewayEvent`.

Plain dictionaries in, core types out: no Stripe SDK here, so the fake gateway and the
webhook path can use it without importing the SDK. Both shapes Stripe has used are read:
a subscription's period end on the subscription (older API versions) or on its items
(newer), an invoice's subscription at `subscription` (older) or at
`parent.subscription_details.subscription` (newer). Amounts become micro-units
(`money.to_micros`). Anything that is not what Stripe sends raises
`InvalidWebhookError(code="malformed_event")`; an event type Portico does not act on, or
a checkout mode it does not sell (`setup`), gives an event with `subject` None.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.stripe.money import to_micros
from core.payments.errors import InvalidWebhookError
from core.payments.model import (
    ChargeRefunded,
    CheckoutCompleted,
    CheckoutMode,
    EventSubject,
    GatewayEvent,
    GatewaySubscription,
    InvoiceSettled,
    SubscriptionChanged,
    SubscriptionStatus,
)
from core.shared.errors import RuleViolationError

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
INVOICE_EVENTS = {"invoice.paid": True, "invoice.payment_failed": False}
PAID_CHECKOUT_STATUSES = frozenset({"paid", "no_payment_required"})


class _Malformed(Exception):
    """Raised inside this module; turned into `InvalidWebhookError` at the edge."""


def parse_event(payload: Mapping[str, Any]) -> GatewayEvent:
    """The event `payload` (a decoded Stripe event) with its `subject` read out."""
    try:
        event = _mapping(payload, "event")
        event_type = _text(event, "type")
        obj = _mapping(_mapping(event.get("data"), "data").get("object"), "data.object")
        return GatewayEvent(
            id=_text(event, "id"),
            type=event_type,
            created=_required_time(event, "created"),
            payload=payload,
            subject=_subject(event_type, obj),
        )
    except (_Malformed, RuleViolationError, ValueError, TypeError) as error:
        raise InvalidWebhookError(f"Not a Stripe event: {error}", code="malformed_event") from error


def parse_subscription(obj: Mapping[str, Any]) -> GatewaySubscription:
    """A Stripe subscription object as the core's `GatewaySubscription`."""
    try:
        return _subscription(_mapping(obj, "subscription"))
    except (_Malformed, RuleViolationError, ValueError, TypeError) as error:
        raise InvalidWebhookError(
            f"Not a Stripe subscription: {error}", code="malformed_event"
        ) from error


# --- subjects ------------------------------------------------------------------------------


def _subject(event_type: str, obj: Mapping[str, Any]) -> EventSubject | None:
    if event_type == "checkout.session.completed":
        return _checkout_completed(obj)
    if event_type in INVOICE_EVENTS:
        return _invoice_settled(obj, paid=INVOICE_EVENTS[event_type])
    if event_type in SUBSCRIPTION_EVENTS:
        return SubscriptionChanged(_subscription(obj))
    if event_type == "charge.refunded":
        return _charge_refunded(obj)
    return None


def _checkout_completed(obj: Mapping[str, Any]) -> CheckoutCompleted | None:
    mode = _text(obj, "mode")
    if mode not in {m.value for m in CheckoutMode}:
        return None  # a `setup` session sells nothing
    currency = _currency(obj)
    return CheckoutCompleted(
        session_id=_text(obj, "id"),
        reference=_optional_text(obj, "client_reference_id"),
        customer_id=_optional_id(obj, "customer"),
        mode=CheckoutMode(mode),
        paid=obj.get("payment_status") in PAID_CHECKOUT_STATUSES,
        amount_total=to_micros(_amount(obj, "amount_total", default=0), currency),
        currency=currency,
        subscription_id=_optional_id(obj, "subscription"),
        payment_id=_optional_id(obj, "payment_intent"),
    )


def _invoice_settled(obj: Mapping[str, Any], *, paid: bool) -> InvoiceSettled:
    currency = _currency(obj)
    amount = _amount(obj, "amount_paid" if paid else "amount_due")
    subscription = _optional_id(obj, "subscription")
    if subscription is None:
        details = _optional_mapping(_optional_mapping(obj, "parent"), "subscription_details")
        subscription = _optional_id(details, "subscription")
    return InvoiceSettled(
        invoice_id=_text(obj, "id"),
        customer_id=_id(obj, "customer"),
        paid=paid,
        amount=to_micros(amount, currency),
        currency=currency,
        subscription_id=subscription,
        payment_id=_invoice_payment_intent(obj),
    )


def _invoice_payment_intent(obj: Mapping[str, Any]) -> str | None:
    """`payment_intent` (older API versions), else the first invoice payment that names
    one (`payments.data[].payment.payment_intent`, newer ones, when included)."""
    found = _optional_id(obj, "payment_intent")
    if found is not None:
        return found
    payments = _optional_mapping(obj, "payments")
    for entry in _list(payments, "data"):
        payment = _optional_mapping(_mapping(entry, "payments.data[]"), "payment")
        intent = _optional_id(payment, "payment_intent")
        if intent is not None:
            return intent
    return None


def _subscription(obj: Mapping[str, Any]) -> GatewaySubscription:
    items = _list(_optional_mapping(obj, "items"), "data")
    first = _mapping(items[0], "items.data[0]") if items else {}
    price = first.get("price")
    price_id = _id(first, "price") if price is not None else None
    period_end = _time(obj, "current_period_end") or _time(first, "current_period_end")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _Malformed("metadata is a map of strings")
    cancel_at_period_end = obj.get("cancel_at_period_end", False)
    if not isinstance(cancel_at_period_end, bool):
        raise _Malformed("cancel_at_period_end is a boolean")
    return GatewaySubscription(
        id=_text(obj, "id"),
        customer_id=_id(obj, "customer"),
        status=SubscriptionStatus(_text(obj, "status")),
        price_id=price_id,
        current_period_end=period_end,
        cancel_at_period_end=cancel_at_period_end,
        canceled_at=_time(obj, "canceled_at"),
        metadata=dict(metadata),
    )


def _charge_refunded(obj: Mapping[str, Any]) -> ChargeRefunded:
    currency = _currency(obj)
    return ChargeRefunded(
        charge_id=_text(obj, "id"),
        payment_id=_optional_id(obj, "payment_intent"),
        amount=to_micros(_amount(obj, "amount"), currency),
        amount_refunded=to_micros(_amount(obj, "amount_refunded"), currency),
        currency=currency,
    )


# --- field readers -------------------------------------------------------------------------


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Malformed(f"{what} is not an object")
    return value


def _optional_mapping(obj: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    value = None if obj is None else obj.get(key)
    return None if value is None else _mapping(value, key)


def _list(obj: Mapping[str, Any] | None, key: str) -> list[Any]:
    value = None if obj is None else obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f"{key} is not a list")
    return value


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{key} is not a non-empty string")
    return value


def _optional_text(obj: Mapping[str, Any], key: str) -> str | None:
    return None if obj.get(key) is None else _text(obj, key)


def _id(obj: Mapping[str, Any], key: str) -> str:
    """An id field: Stripe sends the id, or the whole object when it was expanded."""
    value = obj.get(key)
    if isinstance(value, Mapping):
        return _text(value, "id")
    return _text(obj, key)


def _optional_id(obj: Mapping[str, Any] | None, key: str) -> str | None:
    if obj is None or obj.get(key) is None:
        return None
    return _id(obj, key)


def _amount(obj: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"{key} is not an amount")
    return value


def _currency(obj: Mapping[str, Any]) -> str:
    value = _text(obj, "currency")
    if len(value) != 3 or not value.isalpha():
        raise _Malformed("currency is not a three-letter code")
    return value.lower()


def _time(obj: Mapping[str, Any], key: str) -> datetime | None:
    return None if obj.get(key) is None else _required_time(obj, key)


def _required_time(obj: Mapping[str, Any], key: str) -> datetime:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"{key} is not a unix time")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise _Malformed(f"{key} is out of range") from error

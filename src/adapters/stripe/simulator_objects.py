"""The Stripe-shaped objects `StripeSimulator` keeps, and the errors it raises.

Shapes follow the API version of the installed SDK (`API_VERSION`): a subscription's
period lives on its items, an invoice names its subscription under
`parent.subscription_details`. With `legacy=True` the builders also write the older
fields (`current_period_end` on the subscription, `subscription` and `payment_intent` on
the invoice), so both readings of `events.py` can be exercised end to end.
"""

from __future__ import annotations

import calendar
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

API_VERSION = "2026-10-28.endive"

StripeObject = dict[str, Any]


class SimulatorError(Exception):
    """What Stripe would answer instead of an object: its HTTP status and its `error`
    body (`type`, `code`, `message`, `param`), as the fake server sends them."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        for key in ("code", "param", "decline_code"):
            if getattr(self, key) is not None:
                error[key] = getattr(self, key)
        return {"error": error}

    @classmethod
    def not_found(cls, kind: str, object_id: str, param: str = "id") -> SimulatorError:
        return cls(
            404,
            "invalid_request_error",
            f"No such {kind}: '{object_id}'",
            code="resource_missing",
            param=param,
        )

    @classmethod
    def invalid(
        cls, message: str, *, param: str | None = None, code: str | None = None
    ) -> SimulatorError:
        return cls(400, "invalid_request_error", message, code=code, param=param)

    @classmethod
    def missing(cls, kind: str, object_id: str, param: str) -> SimulatorError:
        """A request naming an object that does not exist (400, as Stripe answers)."""
        error = cls.not_found(kind, object_id, param)
        error.status = 400
        return error

    @classmethod
    def card_declined(cls) -> SimulatorError:
        return cls(
            402,
            "card_error",
            "Your card was declined.",
            code="card_declined",
            decline_code="generic_decline",
        )

    @classmethod
    def unavailable(cls, status: int = 503) -> SimulatorError:
        return cls(status, "api_error", "Stripe is temporarily unavailable (simulated).")


def new_id(prefix: str) -> str:
    """A random id in Stripe's style, marked as fake (`sub_fake_...`)."""
    return f"{prefix}_fake_{secrets.token_hex(12)}"


def add_interval(start: int, interval: str, count: int = 1) -> int:
    """`start` (unix seconds) plus `count` recurring intervals, calendar months kept
    (Jan 31 + 1 month = Feb 28/29), as Stripe bills."""
    moment = datetime.fromtimestamp(start, UTC)
    if interval == "day":
        return int((moment + timedelta(days=count)).timestamp())
    if interval == "week":
        return int((moment + timedelta(weeks=count)).timestamp())
    months = {"month": count, "year": 12 * count}.get(interval)
    if months is None:
        raise ValueError(f"unknown interval {interval!r}")
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def price(
    price_id: str, unit_amount: int, currency: str, interval: str | None, created: int
) -> StripeObject:
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "created": created,
        "currency": currency.lower(),
        "livemode": False,
        "recurring": None
        if interval is None
        else {"interval": interval, "interval_count": 1, "usage_type": "licensed"},
        "type": "one_time" if interval is None else "recurring",
        "unit_amount": unit_amount,
    }


def payment_intent(
    customer: str | None, amount: int, currency: str, created: int, metadata: dict[str, str]
) -> StripeObject:
    return {
        "id": new_id("pi"),
        "object": "payment_intent",
        "amount": amount,
        "amount_received": 0,
        "currency": currency,
        "customer": customer,
        "created": created,
        "latest_charge": None,
        "livemode": False,
        "metadata": dict(metadata),
        "status": "requires_payment_method",
    }


def charge(intent: StripeObject, created: int) -> StripeObject:
    return {
        "id": new_id("ch"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": 0,
        "captured": True,
        "created": created,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "paid": True,
        "payment_intent": intent["id"],
        "refunded": False,
        "status": "succeeded",
    }


def subscription(
    customer: str,
    price_object: StripeObject,
    start: int,
    end: int,
    metadata: dict[str, str],
    *,
    legacy: bool,
) -> StripeObject:
    sub_id = new_id("sub")
    sub: StripeObject = {
        "id": sub_id,
        "object": "subscription",
        "billing_cycle_anchor": start,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "collection_method": "charge_automatically",
        "created": start,
        "currency": price_object["currency"],
        "customer": customer,
        "ended_at": None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": new_id("si"),
                    "object": "subscription_item",
                    "created": start,
                    "price": dict(price_object),
                    "quantity": 1,
                    "subscription": sub_id,
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": dict(metadata),
        "start_date": start,
        "status": "active",
    }
    set_period(sub, start, end, legacy=legacy)
    return sub


def set_period(sub: StripeObject, start: int, end: int, *, legacy: bool) -> None:
    item = sub["items"]["data"][0]
    item["current_period_start"], item["current_period_end"] = start, end
    if legacy:
        sub["current_period_start"], sub["current_period_end"] = start, end


def invoice(
    sub: StripeObject,
    amount: int,
    intent: StripeObject | None,
    billing_reason: str,
    created: int,
    *,
    legacy: bool,
) -> StripeObject:
    item = sub["items"]["data"][0]
    payments = (
        []
        if intent is None
        else [
            {
                "id": new_id("inpay"),
                "object": "invoice_payment",
                "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
                "status": "open",
            }
        ]
    )
    found: StripeObject = {
        "id": new_id("in"),
        "object": "invoice",
        "amount_due": amount,
        "amount_paid": 0,
        "amount_remaining": amount,
        "attempt_count": 0,
        "attempted": False,
        "billing_reason": billing_reason,
        "created": created,
        "currency": sub["currency"],
        "customer": sub["customer"],
        "livemode": False,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": sub["id"],
                "metadata": dict(sub["metadata"]),
            },
        },
        "payments": {"object": "list", "data": payments, "has_more": False},
        "period_start": item["current_period_start"],
        "period_end": item["current_period_end"],
        "status": "open",
    }
    if legacy:
        found["subscription"] = sub["id"]
        found["payment_intent"] = None if intent is None else intent["id"]
    return found


def event(event_type: str, obj: StripeObject, created: int) -> StripeObject:
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }

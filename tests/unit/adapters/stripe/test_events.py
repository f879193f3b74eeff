"""Stripe event JSON read into the core's `GatewayEvent`: each subject, both API shapes,
and malformed input refused as `malformed_event`."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.stripe.events import parse_event, parse_subscription
from core.payments.errors import InvalidWebhookError
from core.payments.model import (
    ChargeRefunded,
    CheckoutCompleted,
    CheckoutMode,
    InvoiceSettled,
    SubscriptionChanged,
    SubscriptionStatus,
)

CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z
PERIOD_END = 1_769_904_000  # 2026-02-01T00:00:00Z


def event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "evt_1",
        "object": "event",
        "type": event_type,
        "created": CREATED,
        "data": {"object": obj},
    }


def session(**changes: Any) -> dict[str, Any]:
    return {
        "id": "cs_1",
        "object": "checkout.session",
        "client_reference_id": "chk_ours",
        "customer": "cus_1",
        "mode": "subscription",
        "payment_status": "paid",
        "amount_total": 2000,
        "currency": "usd",
        "subscription": "sub_1",
        "payment_intent": None,
        **changes,
    }


def subscription(**changes: Any) -> dict[str, Any]:
    return {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_1",
        "status": "active",
        "cancel_at_period_end": False,
        "canceled_at": None,
        "metadata": {"user_id": "7"},
        "items": {
            "object": "list",
            "data": [
                {"id": "si_1", "price": {"id": "price_pro"}, "current_period_end": PERIOD_END}
            ],
        },
        **changes,
    }


def invoice(**changes: Any) -> dict[str, Any]:
    return {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_1",
        "amount_due": 2000,
        "amount_paid": 2000,
        "currency": "usd",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1"},
        },
        **changes,
    }


def test_an_event_keeps_its_id_type_time_and_payload() -> None:
    payload = event("checkout.session.completed", session())
    found = parse_event(payload)
    assert (found.id, found.type) == ("evt_1", "checkout.session.completed")
    assert found.created == datetime(2026, 1, 1, tzinfo=UTC)
    assert found.payload == payload


def test_a_completed_subscription_checkout() -> None:
    found = parse_event(event("checkout.session.completed", session())).subject
    assert found == CheckoutCompleted(
        session_id="cs_1",
        reference="chk_ours",
        customer_id="cus_1",
        mode=CheckoutMode.SUBSCRIPTION,
        paid=True,
        amount_total=20_000_000,
        currency="usd",
        subscription_id="sub_1",
        payment_id=None,
    )


@pytest.mark.parametrize(
    ("payment_status", "paid"), [("paid", True), ("no_payment_required", True), ("unpaid", False)]
)
def test_a_completed_payment_checkout(payment_status: str, paid: bool) -> None:
    obj = session(
        mode="payment",
        payment_status=payment_status,
        amount_total=500,
        currency="JPY",
        subscription=None,
        payment_intent={"id": "pi_1", "object": "payment_intent"},  # expanded
        customer={"id": "cus_9", "object": "customer"},
        client_reference_id=None,
    )
    found = parse_event(event("checkout.session.completed", obj)).subject
    assert isinstance(found, CheckoutCompleted)
    assert found.mode is CheckoutMode.PAYMENT and found.paid is paid
    assert (found.amount_total, found.currency) == (500_000_000, "jpy")
    assert (found.payment_id, found.customer_id, found.reference) == ("pi_1", "cus_9", None)
    assert found.subscription_id is None


def test_a_setup_checkout_sells_nothing() -> None:
    assert parse_event(event("checkout.session.completed", session(mode="setup"))).subject is None


@pytest.mark.parametrize("event_type", ["invoice.paid", "invoice.payment_failed"])
def test_an_invoice_names_its_subscription_in_either_api_shape(event_type: str) -> None:
    newer = invoice()
    older = invoice(subscription="sub_1", payment_intent="pi_1")
    del older["parent"]
    assert parse_event(event(event_type, newer)).subject.subscription_id == "sub_1"  # type: ignore[union-attr]
    assert parse_event(event(event_type, older)).subject.subscription_id == "sub_1"  # type: ignore[union-attr]
    assert parse_event(event(event_type, older)).subject.payment_id == "pi_1"  # type: ignore[union-attr]


def test_a_paid_invoice_counts_what_was_paid_a_failed_one_what_is_due() -> None:
    obj = invoice(amount_due=2500, amount_paid=0)
    paid = parse_event(event("invoice.paid", invoice())).subject
    failed = parse_event(event("invoice.payment_failed", obj)).subject
    assert paid == InvoiceSettled(
        invoice_id="in_1",
        customer_id="cus_1",
        paid=True,
        amount=20_000_000,
        currency="usd",
        subscription_id="sub_1",
        payment_id=None,
    )
    assert isinstance(failed, InvoiceSettled)
    assert (failed.paid, failed.amount) == (False, 25_000_000)


def test_an_invoice_payment_intent_from_its_payments_list() -> None:
    payments = {
        "object": "list",
        "data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_2"}}],
    }
    found = parse_event(event("invoice.paid", invoice(payments=payments))).subject
    assert isinstance(found, InvoiceSettled) and found.payment_id == "pi_2"


def test_an_invoice_of_no_subscription() -> None:
    obj = invoice(parent=None)
    found = parse_event(event("invoice.paid", obj)).subject
    assert isinstance(found, InvoiceSettled) and found.subscription_id is None


@pytest.mark.parametrize(
    "event_type",
    [
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ],
)
def test_a_subscription_change_carries_the_subscription(event_type: str) -> None:
    found = parse_event(event(event_type, subscription())).subject
    assert isinstance(found, SubscriptionChanged)
    assert found.subscription == parse_subscription(subscription())


def test_a_subscription_period_end_in_either_api_shape() -> None:
    newer = parse_subscription(subscription())
    older_obj = subscription(current_period_end=PERIOD_END)
    del older_obj["items"]["data"][0]["current_period_end"]
    older = parse_subscription(older_obj)
    assert newer.current_period_end == older.current_period_end == datetime(2026, 2, 1, tzinfo=UTC)


def test_a_subscription_read_field_by_field() -> None:
    found = parse_subscription(
        subscription(status="past_due", cancel_at_period_end=True, canceled_at=CREATED)
    )
    assert found.id == "sub_1" and found.customer_id == "cus_1"
    assert found.status is SubscriptionStatus.PAST_DUE
    assert found.price_id == "price_pro"
    assert found.cancel_at_period_end is True
    assert found.canceled_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert found.metadata == {"user_id": "7"}


def test_a_subscription_without_items_or_metadata() -> None:
    found = parse_subscription(subscription(items=None, metadata=None))
    assert found.price_id is None and found.current_period_end is None and found.metadata == {}


def test_a_refund_counts_the_total_refunded() -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 500,
        "amount_refunded": 200,
        "currency": "usd",
        "payment_intent": "pi_1",
    }
    assert parse_event(event("charge.refunded", charge)).subject == ChargeRefunded(
        charge_id="ch_1",
        payment_id="pi_1",
        amount=5_000_000,
        amount_refunded=2_000_000,
        currency="usd",
    )


def test_other_event_types_have_no_subject() -> None:
    found = parse_event(event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert found.subject is None and found.type == "customer.created"


def _without(obj: dict[str, Any], *path: str) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    node = changed
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return changed


def _with(obj: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


CHECKOUT = event("checkout.session.completed", session())
INVOICE = event("invoice.paid", invoice())
SUBSCRIPTION = event("customer.subscription.updated", subscription())
MALFORMED = {
    "not an object": [],
    "no id": _without(CHECKOUT, "id"),
    "empty id": _with(CHECKOUT, "", "id"),
    "no type": _without(CHECKOUT, "type"),
    "created as text": _with(CHECKOUT, "1767225600", "created"),
    "created as a boolean": _with(CHECKOUT, True, "created"),
    "created out of range": _with(CHECKOUT, 10**20, "created"),
    "no data": _without(CHECKOUT, "data"),
    "data.object not an object": _with(CHECKOUT, "cs_1", "data", "object"),
    "checkout without currency": _without(CHECKOUT, "data", "object", "currency"),
    "checkout with a bad currency": _with(CHECKOUT, "dollars", "data", "object", "currency"),
    "checkout with a negative total": _with(CHECKOUT, -1, "data", "object", "amount_total"),
    "invoice without customer": _without(INVOICE, "data", "object", "customer"),
    "invoice with amount as text": _with(INVOICE, "2000", "data", "object", "amount_paid"),
    "invoice parent not an object": _with(INVOICE, "sub_1", "data", "object", "parent"),
    "subscription with an unknown status": _with(
        SUBSCRIPTION, "melted", "data", "object", "status"
    ),
    "subscription metadata not strings": _with(
        SUBSCRIPTION, {"n": 1}, "data", "object", "metadata"
    ),
    "subscription items not a list": _with(SUBSCRIPTION, {"data": {}}, "data", "object", "items"),
    "subscription flag not a boolean": _with(
        SUBSCRIPTION, "yes", "data", "object", "cancel_at_period_end"
    ),
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_is_a_malformed_event(payload: Any) -> None:
    with pytest.raises(InvalidWebhookError) as refused:
        parse_event(payload)
    assert refused.value.code == "malformed_event"


def test_a_malformed_subscription_is_a_malformed_event() -> None:
    with pytest.raises(InvalidWebhookError) as refused:
        parse_subscription(subscription(customer=None))
    assert refused.value.code == "malformed_event"

"""The webhook verifier, on signatures made by the Stripe SDK itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import stripe

from adapters.stripe.webhooks import StripeWebhookVerifier, sign
from core.payments.errors import InvalidWebhookError
from core.payments.model import InvoiceSettled

SECRET = "whsec_test_portico"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVENT = {
    "id": "evt_1",
    "object": "event",
    "type": "invoice.paid",
    "created": int(NOW.timestamp()),
    "data": {
        "object": {
            "id": "in_1",
            "object": "invoice",
            "customer": "cus_1",
            "amount_due": 2000,
            "amount_paid": 2000,
            "currency": "usd",
            "subscription": "sub_1",
        }
    },
}
BODY = json.dumps(EVENT).encode()


def header(body: bytes, at: datetime = NOW, secret: str = SECRET) -> str:
    return str(
        stripe.WebhookSignature.generate_signature_header(
            body.decode(), secret, timestamp=int(at.timestamp())
        )
    )


def refusal(payload: bytes, signature: str | None, now: datetime = NOW) -> str:
    with pytest.raises(InvalidWebhookError) as refused:
        StripeWebhookVerifier(SECRET).verify(payload, signature, now)
    return refused.value.code


def test_a_signed_event_is_verified_and_read() -> None:
    found = StripeWebhookVerifier(SECRET).verify(BODY, header(BODY), NOW)
    assert (found.id, found.type) == ("evt_1", "invoice.paid")
    assert isinstance(found.subject, InvoiceSettled) and found.subject.amount == 20_000_000
    assert found.payload == EVENT


def test_any_of_several_signatures_may_match() -> None:
    # During a secret's rotation Stripe signs with both: `t=..,v1=old,v1=new`.
    rotated = header(BODY, secret="whsec_old") + "," + header(BODY).split(",")[1]
    assert StripeWebhookVerifier(SECRET).verify(BODY, rotated, NOW).id == "evt_1"


def test_a_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"2000", b"9000")
    assert refusal(tampered, header(BODY)) == "invalid_signature"


def test_another_secret_is_refused() -> None:
    assert refusal(BODY, header(BODY, secret="whsec_someone_else")) == "invalid_signature"


@pytest.mark.parametrize("signature", [None, "", "garbage", "t=1", "v1=abc", "t=x,v1=abc"])
def test_a_missing_or_unreadable_signature_is_refused(signature: str | None) -> None:
    assert refusal(BODY, signature) == "invalid_signature"


def test_a_body_that_is_not_utf8_is_refused() -> None:
    body = b"\xff\xfe" + BODY
    signature = f"t={int(NOW.timestamp())},v1=" + "0" * 64
    assert refusal(body, signature) == "invalid_signature"


@pytest.mark.parametrize("seconds", [299, 300, -299, -300])
def test_a_timestamp_within_the_tolerance_either_way_is_accepted(seconds: int) -> None:
    signed_at = NOW - timedelta(seconds=seconds)
    assert StripeWebhookVerifier(SECRET).verify(BODY, header(BODY, signed_at), NOW).id == "evt_1"


@pytest.mark.parametrize("seconds", [301, -301, 86_400])
def test_a_timestamp_beyond_the_tolerance_either_way_is_stale(seconds: int) -> None:
    signed_at = NOW - timedelta(seconds=seconds)
    assert refusal(BODY, header(BODY, signed_at)) == "stale_timestamp"


def test_the_tolerance_is_configurable() -> None:
    verifier = StripeWebhookVerifier(SECRET, tolerance_seconds=10)
    with pytest.raises(InvalidWebhookError):
        verifier.verify(BODY, header(BODY, NOW - timedelta(seconds=11)), NOW)
    assert verifier.verify(BODY, header(BODY, NOW - timedelta(seconds=10)), NOW).id == "evt_1"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"object": "v2.core.event", "id": "evt_1"}', b'{"id": "evt_1"}'],
)
def test_a_signed_body_that_is_not_an_event_is_malformed(body: bytes) -> None:
    assert refusal(body, header(body)) == "malformed_event"


def test_sign_makes_the_header_stripe_would_send() -> None:
    assert sign(BODY, SECRET, NOW) == header(BODY)
    assert StripeWebhookVerifier(SECRET).verify(BODY, sign(BODY, SECRET, NOW), NOW).id == "evt_1"


@pytest.mark.parametrize(("secret", "tolerance"), [("", 300), ("  ", 300), (SECRET, 0)])
def test_a_verifier_needs_a_secret_and_a_tolerance(secret: str, tolerance: int) -> None:
    with pytest.raises(ValueError):
        StripeWebhookVerifier(secret, tolerance)

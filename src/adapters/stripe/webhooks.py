"""Stripe webhook signatures: verifying deliveries, and signing them (the fake gateway).

The Stripe SDK is imported inside the functions, not here: it costs about 30 MiB and a
quarter of a second, which the embedded profile should not pay before a webhook arrives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.stripe.events import parse_event
from core.payments.errors import InvalidWebhookError
from core.payments.model import GatewayEvent
from core.payments.ports import WebhookVerifier

DEFAULT_TOLERANCE_SECONDS = 300


class StripeWebhookVerifier(WebhookVerifier):
    """Verifies `Stripe-Signature` headers with the SDK's scheme (HMAC-SHA256 of
    `"{t}.{body}"` under the endpoint's secret, any `v1=` signature may match).

    Guarantees: the body is accepted only byte for byte as signed; the signed timestamp
    `t` must be within `tolerance_seconds` of `now` on either side (the SDK checks only
    the past, against its own clock, so its check is turned off and this one decides);
    the body must then be a Stripe event. Refusals raise `InvalidWebhookError` with code
    `invalid_signature`, `stale_timestamp` or `malformed_event`, in that order of
    checking. Pure computation, no I/O.
    """

    def __init__(self, secret: str, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS) -> None:
        if not secret or not secret.strip():
            raise ValueError("a webhook signing secret is required")
        if tolerance_seconds <= 0:
            raise ValueError("the timestamp tolerance is a positive number of seconds")
        self._secret = secret
        self._tolerance = tolerance_seconds

    def verify(self, payload: bytes, signature: str | None, now: datetime) -> GatewayEvent:
        if not signature:
            raise InvalidWebhookError("The Stripe-Signature header is missing.")
        from stripe import SignatureVerificationError, WebhookSignature

        try:
            WebhookSignature.verify_header(payload, signature, self._secret, tolerance=None)
        except SignatureVerificationError as error:
            raise InvalidWebhookError("The webhook signature does not match.") from error
        except UnicodeDecodeError as error:
            # The scheme signs the body as text: bytes that are not UTF-8 were not signed.
            raise InvalidWebhookError("The webhook body is not UTF-8.") from error
        signed_at = _signed_timestamp(signature)
        if abs(now.timestamp() - signed_at) > self._tolerance:
            raise InvalidWebhookError(
                "The webhook timestamp is outside the tolerance.", code="stale_timestamp"
            )
        try:
            body = json.loads(payload)
        except (ValueError, RecursionError) as error:
            raise InvalidWebhookError(
                "The webhook body is not JSON.", code="malformed_event"
            ) from error
        return self.parse(body)

    def parse(self, event: Mapping[str, Any]) -> GatewayEvent:
        if not isinstance(event, Mapping) or event.get("object", "event") != "event":
            raise InvalidWebhookError("The webhook body is not an event.", code="malformed_event")
        return parse_event(event)


def _signed_timestamp(header: str) -> int:
    """The header's first `t=` value, the one the SDK verified the signature with."""
    for item in header.split(","):
        parts = item.split("=", 2)  # read as the SDK reads it
        if parts[0] == "t" and len(parts) > 1:
            try:
                return int(parts[1])
            except ValueError:
                break
    raise InvalidWebhookError("The webhook signature has no timestamp.")


def sign(payload: bytes, secret: str, at: datetime) -> str:
    """The `Stripe-Signature` header Stripe would send with `payload` at time `at`."""
    from stripe import WebhookSignature

    header = WebhookSignature.generate_signature_header(
        payload.decode("utf-8"), secret, timestamp=int(at.timestamp())
    )
    return str(header)

"""Events from the payment gateway. Public (the signature is the authentication), not
rate limited (the gateway retries in bursts), and read as raw bytes: the signature is
over the body exactly as sent."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.payments.events import PaymentEventService
from entrypoints.http.context import service
from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse
from entrypoints.http.schemas.payments import WebhookReceipt
from entrypoints.http.schemas.problem import Problem

SIGNATURE_HEADER = "stripe-signature"

group = EndpointGroup(tags=("webhooks",), rate_limited=False)


@group.post(
    "/api/v1/webhooks/stripe",
    access=Access.PUBLIC,
    responses={200: WebhookReceipt, 400: Problem, 413: Problem},
)
async def stripe_webhook(request: Request) -> Response:
    """A Stripe event, signed (`Stripe-Signature`). 200 once handled, duplicates too;
    400 `invalid_signature`, `stale_timestamp` (more than the tolerance, 300 s, either
    way) or `malformed_event`, and nothing is written; 503 while a dependency is down
    (Stripe delivers it again)."""
    body = await request.body()
    receipt = await service(request, PaymentEventService).receive(
        body, request.headers.get(SIGNATURE_HEADER)
    )
    return ModelResponse(WebhookReceipt(duplicate=receipt.duplicate, outcome=receipt.outcome.value))

"""`StripeGateway`: the payment gateway on Stripe's API, through the official SDK's async
client (`stripe.StripeClient`, httpx underneath)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.stripe.events import parse_event, parse_subscription
from core.payments.errors import (
    GatewayRequestError,
    PaymentDeclinedError,
    SubscriptionNotFoundError,
)
from core.payments.model import (
    CheckoutMode,
    CheckoutRequest,
    GatewayEvent,
    GatewaySubscription,
    HostedPage,
)
from core.payments.ports import PaymentGateway
from core.shared.errors import DomainError, UnavailableError

if TYPE_CHECKING:
    import stripe

logger = logging.getLogger(__name__)

T = TypeVar("T")
DEPENDENCY = "stripe"
EVENTS_PAGE_SIZE = 100
# The SDK's backoff between retries: 0.5 s doubling, at most 5 s (before jitter).
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 5.0


class StripeGateway(PaymentGateway):
    """A `PaymentGateway` on Stripe.

    Guarantees: each HTTP attempt is bounded by `timeout_seconds` (connect, read, write
    and pool each), and each call as a whole by the attempts plus the SDK's backoff
    between them (`deadline_seconds`), so a hanging Stripe cannot hold a request longer.
    The SDK retries connection errors, timeouts, 409 and 5xx answers up to `max_retries`
    times, reusing the call's idempotency key (ours, derived from Portico's ids), so a
    retry never creates or changes anything twice. Errors: a declined card raises
    `PaymentDeclinedError`; Stripe unreachable, too slow, rate limiting or failing
    (5xx) `UnavailableError(dependency="stripe")`; a request Stripe refuses (invalid,
    bad key, not permitted, idempotency key reused) `GatewayRequestError`, logged;
    cancelling or resuming a subscription Stripe does not know
    `SubscriptionNotFoundError`; reading an unknown subscription or event gives None.

    The SDK is imported when the gateway is built, not when this module is. Call
    `close()` on shutdown to release the HTTP connections.
    """

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        timeout_seconds: float = 10.0,
        max_retries: int = 2,
    ) -> None:
        if not api_key:
            raise ValueError("a Stripe API key is required")
        if timeout_seconds <= 0 or max_retries < 0:
            raise ValueError("the timeout is positive and the retries 0 or more")
        import stripe

        self._stripe = stripe
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=max_retries,
            http_client=self._http,
        )
        backoff = sum(min(_BACKOFF_FIRST * 2**n, _BACKOFF_MAX) for n in range(max_retries))
        self.deadline_seconds = timeout_seconds * (max_retries + 1) + backoff + 1.0

    async def close(self) -> None:
        """Closes the HTTP client's connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]

    # --- the port ------------------------------------------------------------------------

    async def create_customer(self, *, user_id: int, email: str, idempotency_key: str) -> str:
        customer = await self._call(
            self._client.v1.customers.create_async(
                params={"email": email, "metadata": {"user_id": str(user_id)}},
                options={"idempotency_key": idempotency_key},
            )
        )
        return str(customer.id)

    async def create_checkout(
        self, request: CheckoutRequest, *, idempotency_key: str
    ) -> HostedPage:
        metadata = dict(request.metadata)
        params: dict[str, Any] = {
            "mode": request.mode.value,
            "line_items": [{"price": request.price_id, "quantity": 1}],
            "customer": request.customer_id,
            "client_reference_id": request.reference,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "metadata": metadata,
        }
        if request.mode is CheckoutMode.SUBSCRIPTION:
            params["subscription_data"] = {"metadata": metadata}
        else:
            params["payment_intent_data"] = {"metadata": metadata}
        session = await self._call(
            self._client.v1.checkout.sessions.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        )
        if not session.url:
            raise GatewayRequestError("Stripe answered a checkout session without a URL.")
        return HostedPage(id=session.id, url=session.url)

    async def create_portal(
        self, *, customer_id: str, return_url: str, site_url: str
    ) -> HostedPage:
        portal = await self._call(
            self._client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url}
            )
        )
        return HostedPage(id=portal.id, url=portal.url)

    async def get_subscription(self, subscription_id: str) -> GatewaySubscription | None:
        try:
            found = await self._call(self._client.v1.subscriptions.retrieve_async(subscription_id))
        except _Missing:
            return None
        return parse_subscription(found.to_dict())

    async def cancel_subscription(
        self, subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> GatewaySubscription:
        options: Any = {"idempotency_key": idempotency_key}
        subscriptions = self._client.v1.subscriptions
        try:
            if at_period_end:
                found = await self._call(
                    subscriptions.update_async(
                        subscription_id, params={"cancel_at_period_end": True}, options=options
                    )
                )
            else:
                found = await self._call(
                    subscriptions.cancel_async(subscription_id, options=options)
                )
        except _Missing as missing:
            raise SubscriptionNotFoundError() from missing
        return parse_subscription(found.to_dict())

    async def resume_subscription(
        self, subscription_id: str, *, idempotency_key: str
    ) -> GatewaySubscription:
        try:
            found = await self._call(
                self._client.v1.subscriptions.update_async(
                    subscription_id,
                    params={"cancel_at_period_end": False},
                    options={"idempotency_key": idempotency_key},
                )
            )
        except _Missing as missing:
            raise SubscriptionNotFoundError() from missing
        return parse_subscription(found.to_dict())

    async def events_since(self, since: datetime, *, limit: int) -> list[GatewayEvent]:
        """Stripe lists newest first: every page back to `since` is read (Stripe keeps
        30 days of events), then the oldest `limit` are returned, oldest first."""
        if limit <= 0:
            return []
        params: dict[str, Any] = {
            "created": {"gte": int(since.timestamp())},
            "limit": EVENTS_PAGE_SIZE,
        }
        newest_first: list[dict[str, Any]] = []
        while True:
            page = await self._call(self._client.v1.events.list_async(params=params))  # type: ignore[arg-type]
            events = [event.to_dict() for event in page.data]
            newest_first.extend(events)
            if not page.has_more or not events:
                break
            params["starting_after"] = events[-1]["id"]
        return [parse_event(event) for event in reversed(newest_first[-limit:])]

    async def get_event(self, event_id: str) -> GatewayEvent | None:
        try:
            found = await self._call(self._client.v1.events.retrieve_async(event_id))
        except _Missing:
            return None
        return parse_event(found.to_dict())

    # --- errors --------------------------------------------------------------------------

    async def _call(self, request: Awaitable[T]) -> T:
        """Awaits one SDK call within the deadline, its errors turned into the port's."""
        stripe = self._stripe
        try:
            async with asyncio.timeout(self.deadline_seconds):
                return await request
        except TimeoutError as error:
            logger.warning("stripe did not answer within %.1f s", self.deadline_seconds)
            raise UnavailableError(
                "The payment provider is unavailable.", dependency=DEPENDENCY
            ) from error
        except stripe.StripeError as error:
            raise _translate(stripe, error) from error


class _Missing(GatewayRequestError):
    """Stripe answered 404 `resource_missing`: callers turn it into None or a not-found."""


def _translate(sdk: Any, error: stripe.StripeError) -> DomainError:
    status, kind = error.http_status, type(error).__name__
    if isinstance(error, sdk.CardError):
        # Stripe writes card errors' messages for the customer.
        return PaymentDeclinedError(error.user_message or None)
    if isinstance(error, sdk.InvalidRequestError) and (
        status == 404 and error.code == "resource_missing"
    ):
        return _Missing()
    if isinstance(error, sdk.APIConnectionError | sdk.RateLimitError) or (
        isinstance(error, sdk.APIError)
        and (status is None or not 400 <= status < 500 or status == 409)
    ):
        # Unreachable, too slow, rate limited, failing (5xx), a conflict still there
        # after the retries, or an answer that is not Stripe's (a proxy's error page).
        logger.warning("stripe unavailable: %s (status %s): %s", kind, status, error.user_message)
        return UnavailableError("The payment provider is unavailable.", dependency=DEPENDENCY)
    logger.error(
        "stripe refused a request: %s (status %s, code %s, request %s): %s",
        kind,
        status,
        error.code,
        error.request_id,
        error.user_message,
    )
    return GatewayRequestError()


__all__ = ["StripeGateway"]

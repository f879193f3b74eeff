"""`FakePaymentGateway`: the payment gateway of the embedded profile and of tests.

A `StripeSimulator` stands in for Stripe; the fake's hosted pages (checkout, portal)
are served by Portico itself under `{site_url}/fake-gateway/...`, and what a customer
does there comes back as signed webhook deliveries, exactly as Stripe would send them,
so the webhook route, the verifier and the event handling run as in production.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from adapters.stripe.events import parse_event, parse_subscription
from adapters.stripe.fake_support import (
    PORTAL_ACTIONS,
    FakeCheckoutView,
    FakePortalView,
    PortalAction,
    SignedDelivery,
    domain_error,
    translated,
)
from adapters.stripe.money import to_micros, to_minor
from adapters.stripe.simulator import StripeSimulator
from adapters.stripe.simulator_objects import SimulatorError, StripeObject
from adapters.stripe.webhooks import sign
from core.payments.errors import (
    CheckoutNotFoundError,
    GatewayRequestError,
    SubscriptionNotFoundError,
)
from core.payments.model import (
    CheckoutMode,
    CheckoutRequest,
    GatewayEvent,
    GatewaySubscription,
    HostedPage,
    SubscriptionStatus,
)
from core.payments.ports import PaymentGateway
from core.shared.clock import Clock
from core.shared.errors import NotFoundError, RuleViolationError

T = TypeVar("T")

__all__ = [
    "FakeCheckoutView",
    "FakePaymentGateway",
    "FakePortalView",
    "PortalAction",
    "SignedDelivery",
]


class FakePaymentGateway(PaymentGateway):
    """A `PaymentGateway` over an in-memory Stripe account (`.simulator`).

    Guarantees (the port's, checked by the same contract suite as `StripeGateway`):
    calls that carry an idempotency key return the first result for a repeated key
    (a key reused for another request raises `GatewayRequestError`, as Stripe does);
    unknown subscriptions and events read as None; cancelling or resuming an unknown
    subscription raises `SubscriptionNotFoundError`; a price no one registered, or an
    unknown customer, raises `GatewayRequestError`; a declined card
    `PaymentDeclinedError`; a simulated outage `UnavailableError`. No I/O.

    Prices: Stripe knows its prices, the fake knows only those registered here
    (`register_price` with micro-units, or `prices` / `set_price` with minor units,
    which sell in either checkout mode).
    """

    def __init__(
        self,
        clock: Clock,
        webhook_secret: str,
        *,
        prices: Mapping[str, tuple[int, str]] | None = None,
        simulator: StripeSimulator | None = None,
    ) -> None:
        if not webhook_secret or not webhook_secret.strip():
            raise ValueError("the fake signs its webhooks: a secret is required")
        self._clock = clock
        self._secret = webhook_secret
        self.simulator = simulator or StripeSimulator(clock)
        self._done: dict[str, tuple[tuple[Any, ...], Any]] = {}
        for price_id, (amount, currency) in (prices or {}).items():
            self.set_price(price_id, amount, currency)

    # --- prices --------------------------------------------------------------------------

    def register_price(
        self,
        price_id: str,
        amount_micros: int,
        currency: str,
        *,
        recurring: bool,
        interval: str = "month",
    ) -> None:
        """A catalog price: recurring ones sell only as subscriptions, others only as
        one-time payments. `ValueError` if the amount is not whole minor units."""
        amount = to_minor(amount_micros, currency)
        self.simulator.add_price(
            price_id, amount, currency, interval=interval if recurring else None
        )

    def set_price(self, price_id: str, amount_minor: int, currency: str) -> None:
        """A price in minor units that sells in either mode (monthly as a subscription)."""
        self.simulator.add_price(price_id, amount_minor, currency, flexible=True)

    # --- the port ------------------------------------------------------------------------

    async def create_customer(self, *, user_id: int, email: str, idempotency_key: str) -> str:
        customer = self._once(
            idempotency_key,
            ("customer", user_id, email),
            lambda: self.simulator.create_customer(email=email, metadata={"user_id": str(user_id)}),
        )
        return str(customer["id"])

    async def create_checkout(
        self, request: CheckoutRequest, *, idempotency_key: str
    ) -> HostedPage:
        if not self.simulator.has_price(request.price_id) and request.amount > 0:
            # The fake has no price list of its own: it sells at the catalog's price
            # (a price it was never told of, and no amount: refused, as Stripe would).
            self.register_price(
                request.price_id,
                request.amount,
                request.currency,
                recurring=request.mode is CheckoutMode.SUBSCRIPTION,
            )
        metadata = dict(request.metadata)
        session = self._once(
            idempotency_key,
            ("checkout", request),
            lambda: self.simulator.create_checkout_session(
                mode=request.mode.value,
                price_id=request.price_id,
                url_base=f"{request.site_url.rstrip('/')}/fake-gateway/checkout",
                success_url=request.success_url,
                cancel_url=request.cancel_url,
                customer=request.customer_id,
                client_reference_id=request.reference,
                metadata=metadata,
                subscription_metadata=metadata,
            ),
        )
        return HostedPage(id=session["id"], url=session["url"])

    async def create_portal(
        self, *, customer_id: str, return_url: str, site_url: str
    ) -> HostedPage:
        portal = translated(
            lambda: self.simulator.create_portal_session(
                customer=customer_id,
                return_url=return_url,
                url_base=f"{site_url.rstrip('/')}/fake-gateway/portal",
            )
        )
        return HostedPage(id=portal["id"], url=portal["url"])

    async def get_subscription(self, subscription_id: str) -> GatewaySubscription | None:
        found = translated(
            lambda: self.simulator.retrieve_subscription(subscription_id), missing=None
        )
        return None if found is None else parse_subscription(found)

    async def cancel_subscription(
        self, subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> GatewaySubscription:
        def cancel() -> StripeObject:
            if at_period_end:
                return self.simulator.update_subscription(
                    subscription_id, cancel_at_period_end=True
                )
            return self.simulator.cancel_subscription(subscription_id)

        key = ("cancel", subscription_id, at_period_end)
        return parse_subscription(
            self._once(idempotency_key, key, cancel, subscription_missing=True)
        )

    async def resume_subscription(
        self, subscription_id: str, *, idempotency_key: str
    ) -> GatewaySubscription:
        found = self._once(
            idempotency_key,
            ("resume", subscription_id),
            lambda: self.simulator.update_subscription(subscription_id, cancel_at_period_end=False),
            subscription_missing=True,
        )
        return parse_subscription(found)

    async def events_since(self, since: datetime, *, limit: int) -> list[GatewayEvent]:
        if limit <= 0:
            return []
        events = translated(lambda: self.simulator.events_since(since))
        return [parse_event(event) for event in events[:limit]]

    async def get_event(self, event_id: str) -> GatewayEvent | None:
        found = translated(lambda: self.simulator.retrieve_event(event_id), missing=None)
        return None if found is None else parse_event(found)

    # --- the fake's hosted pages ---------------------------------------------------------

    def checkout_view(self, session_id: str) -> FakeCheckoutView | None:
        try:
            session, price = self.simulator.hosted_checkout(session_id)
        except SimulatorError:
            return None
        currency = session["currency"]
        return FakeCheckoutView(
            session_id=session["id"],
            mode=CheckoutMode(session["mode"]),
            description=price["id"],
            amount=to_micros(session["amount_total"], currency),
            currency=currency,
            status=session["status"],
            success_url=session["success_url"],
            cancel_url=session["cancel_url"],
        )

    def complete_checkout(self, session_id: str) -> list[SignedDelivery]:
        """The customer pays: the webhook deliveries Stripe would send (none when the
        session is complete already). `CheckoutNotFoundError` for an unknown session."""
        try:
            events = self.simulator.complete_checkout_session(session_id)
        except SimulatorError as error:
            if error.status == 404:
                raise CheckoutNotFoundError() from error
            raise domain_error(error) from error
        return self.deliveries(events)

    def portal_view(self, portal_id: str) -> FakePortalView | None:
        try:
            portal = self.simulator.retrieve_portal_session(portal_id)
        except SimulatorError:
            return None
        current = self._current_subscription(portal["customer"])
        return FakePortalView(
            portal_id=portal["id"],
            customer_id=portal["customer"],
            return_url=portal["return_url"],
            subscription=None if current is None else parse_subscription(current),
        )

    def portal_action(self, portal_id: str, action: PortalAction) -> list[SignedDelivery]:
        """Cancel at period end, resume, or cancel now the portal customer's current
        subscription; the deliveries it causes (none when nothing changed)."""
        if action not in PORTAL_ACTIONS:
            raise RuleViolationError(f"Unknown portal action {action!r}.", field="action")
        view = self.portal_view(portal_id)
        if view is None:
            raise NotFoundError("No such portal session.")
        if view.subscription is None:
            raise SubscriptionNotFoundError()
        sub_id = view.subscription.id
        with self.simulator.recording() as emitted:
            if action == "cancel_now":
                translated(lambda: self.simulator.cancel_subscription(sub_id))
            else:
                flag = action == "cancel_at_period_end"
                translated(
                    lambda: self.simulator.update_subscription(sub_id, cancel_at_period_end=flag)
                )
        return self.deliveries(emitted)

    # --- more of what Stripe would send, for tests ---------------------------------------

    def renew_subscription(
        self, subscription_id: str, *, paid: bool = True
    ) -> list[SignedDelivery]:
        """A renewal paid (or failed): its deliveries."""
        renew = self.simulator.pay_renewal if paid else self.simulator.fail_renewal
        return self.deliveries(translated(lambda: renew(subscription_id)))

    def refund_payment(self, payment_id: str, amount: int | None = None) -> list[SignedDelivery]:
        """Refunds `amount` micro-units (all that is left when None) of the payment
        intent's charge: its deliveries."""
        intent = translated(lambda: self.simulator.retrieve_payment_intent(payment_id))
        minor = None if amount is None else to_minor(amount, intent["currency"])
        return self.deliveries(
            translated(lambda: self.simulator.refund_charge(intent["latest_charge"], minor))
        )

    def deliveries(self, events: list[StripeObject]) -> list[SignedDelivery]:
        """`events` serialized as Stripe sends them and signed at the clock's now."""
        now = self._clock.now()
        signed = []
        for event in events:
            payload = json.dumps(event, separators=(",", ":")).encode("utf-8")
            signed.append(SignedDelivery(payload, sign(payload, self._secret, now)))
        return signed

    # --- internals -----------------------------------------------------------------------

    def _once(
        self,
        key: str,
        request: tuple[Any, ...],
        action: Callable[[], T],
        *,
        subscription_missing: bool = False,
    ) -> T:
        """Stripe's idempotency: a key's first result is the answer to its repeats."""
        done = self._done.get(key)
        if done is not None:
            if done[0] != request:
                raise GatewayRequestError(
                    "This idempotency key was used for another request (Stripe refuses it)."
                )
            result: T = done[1]
            return result
        result = translated(action, subscription_missing=subscription_missing)
        self._done[key] = (request, result)
        return result

    def _current_subscription(self, customer_id: str) -> StripeObject | None:
        for sub in self.simulator.subscriptions_of(customer_id):
            if not SubscriptionStatus(sub["status"]).ended:
                return sub
        return None

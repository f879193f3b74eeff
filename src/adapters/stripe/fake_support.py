"""What `FakePaymentGateway` hands its hosted pages (views, signed deliveries), and how
the simulator's errors become the payment port's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from adapters.stripe.simulator_objects import SimulatorError
from core.payments.errors import (
    GatewayRequestError,
    PaymentDeclinedError,
    SubscriptionNotFoundError,
)
from core.payments.model import CheckoutMode, GatewaySubscription
from core.shared.errors import DomainError, UnavailableError

T = TypeVar("T")
PortalAction = Literal["cancel_at_period_end", "resume", "cancel_now"]
PORTAL_ACTIONS: tuple[PortalAction, ...] = ("cancel_at_period_end", "resume", "cancel_now")
DEPENDENCY = "payment_gateway"


@dataclass(frozen=True, slots=True)
class SignedDelivery:
    """One webhook delivery: the body as sent and its `Stripe-Signature` header."""

    payload: bytes
    signature: str


@dataclass(frozen=True, slots=True)
class FakeCheckoutView:
    """What the fake checkout page shows. `amount` is in micro-units of `currency`;
    `status` is `open` or `complete`."""

    session_id: str
    mode: CheckoutMode
    description: str
    amount: int | None
    currency: str | None
    status: str
    success_url: str
    cancel_url: str | None


@dataclass(frozen=True, slots=True)
class FakePortalView:
    """What the fake portal shows: the customer's subscription that has not ended (the
    newest, if any) and where to go back to."""

    portal_id: str
    customer_id: str
    return_url: str | None
    subscription: GatewaySubscription | None


NOT_GIVEN: Any = object()


def translated(
    action: Callable[[], T], *, missing: Any = NOT_GIVEN, subscription_missing: bool = False
) -> T:
    """Runs a simulator call and turns its `SimulatorError` into the port's errors:
    `missing` is returned for a 404 when given."""
    try:
        return action()
    except SimulatorError as error:
        if error.status == 404 and missing is not NOT_GIVEN:
            result: T = missing
            return result
        if error.status == 404 and subscription_missing:
            raise SubscriptionNotFoundError() from error
        raise domain_error(error) from error


def domain_error(error: SimulatorError) -> DomainError:
    if error.status == 402:
        return PaymentDeclinedError(error.message)
    if error.status == 429 or error.status >= 500:
        return UnavailableError(f"Payment gateway: {error.message}", dependency=DEPENDENCY)
    return GatewayRequestError(error.message)

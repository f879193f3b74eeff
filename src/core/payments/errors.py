"""Payment errors: each leaf of a shared category, so the HTTP status follows from it."""

from __future__ import annotations

from core.shared.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    QuotaExceededError,
    RuleViolationError,
    UnavailableError,
)


class CustomerExistsError(ConflictError):
    code = "customer_exists"
    default_detail = "This user already has a customer at the payment gateway."


class CheckoutExistsError(ConflictError):
    code = "checkout_exists"
    default_detail = "A checkout with this id exists."


class CheckoutNotFoundError(NotFoundError):
    code = "checkout_not_found"
    default_detail = "No such checkout."


class SubscriptionExistsError(ConflictError):
    code = "subscription_exists"
    default_detail = "You already have a subscription: change plans in the billing portal."


class SubscriptionNotFoundError(NotFoundError):
    code = "subscription_not_found"
    default_detail = "You have no subscription."


class PaymentExistsError(ConflictError):
    code = "payment_exists"
    default_detail = "This payment is recorded already."


class PaymentNotFoundError(NotFoundError):
    code = "payment_not_found"
    default_detail = "No such payment."


class EventExistsError(ConflictError):
    """The event id is stored already: this delivery is a duplicate."""

    code = "event_exists"
    default_detail = "This event was received before."


class EventNotFoundError(NotFoundError):
    code = "event_not_found"
    default_detail = "No such gateway event."


class NotForSaleError(RuleViolationError):
    code = "not_for_sale"
    default_detail = "This tier or product cannot be bought."


class InvalidWebhookError(DomainError):
    """A webhook delivery that is not authentic, not recent, or not an event: nothing is
    written. `code` says which (`invalid_signature`, `stale_timestamp`,
    `malformed_event`)."""

    code = "invalid_signature"
    default_detail = "The webhook could not be verified."

    def __init__(self, detail: str | None = None, *, code: str = "invalid_signature") -> None:
        super().__init__(detail)
        self.code = code


class PaymentDeclinedError(QuotaExceededError):
    """The gateway refused the payment method (a declined card)."""

    default_detail = "The payment was declined."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, reason="payment_declined")


class GatewayRequestError(UnavailableError):
    """The gateway refused a request as invalid (a bug or a misconfiguration, such as a
    price id that does not exist there): not retried by the adapter. To the caller,
    payments are unavailable until an operator fixes it (the adapter logs why)."""

    code = "payment_gateway_error"
    default_detail = "The payment gateway refused the request."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, dependency="payment_gateway", retry_after=60)

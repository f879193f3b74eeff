"""Checkout, the portal, the subscription and payments as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from core.payments.checkout import SubscriptionView
from core.payments.model import Payment

# A catalog code; null is accepted as "not given" but not advertised.
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class CheckoutCreate(BaseModel):
    """Exactly one of `tier` (a subscription) or `credit_pack` (a one-time purchase)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["tier"]}, {"required": ["credit_pack"]}]},
    )

    tier: Code | SkipJsonSchema[None] = Field(None, description="A public tier's code.")
    credit_pack: Code | SkipJsonSchema[None] = Field(None, description="A credit pack's code.")

    @model_validator(mode="after")
    def _exactly_one(self) -> CheckoutCreate:
        if (self.tier is None) == (self.credit_pack is None):
            raise ValueError("give exactly one of tier or credit_pack")
        return self


class RedirectRead(BaseModel):
    url: str = Field(description="Where to send the user: a page hosted by the gateway.")


class SubscriptionRead(BaseModel):
    """The caller's plan. `status` is the gateway's (`active`, `past_due`, `canceled`...)
    or `none`; `scheduled_tier` is a downgrade waiting for the period end."""

    tier: str
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    scheduled_tier: str | None = None

    @classmethod
    def from_view(cls, view: SubscriptionView) -> SubscriptionRead:
        return cls(
            tier=view.tier,
            status=view.status,
            current_period_end=view.current_period_end,
            cancel_at_period_end=view.cancel_at_period_end,
            scheduled_tier=view.scheduled_tier,
        )


class CancelSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at_period_end: bool = Field(
        True, description="true: at the end of the paid period; false: now."
    )


class PaymentRead(BaseModel):
    """A payment: `amount` in micro-units of `currency` (1 USD = 1,000,000)."""

    id: int
    kind: str
    amount: int
    currency: str
    status: str
    amount_refunded: int
    product: str | None
    tier: str | None
    credits: int
    created_at: datetime

    @classmethod
    def from_payment(cls, payment: Payment) -> PaymentRead:
        assert payment.id is not None and payment.created_at is not None
        return cls(
            id=payment.id,
            kind=payment.kind.value,
            amount=payment.amount,
            currency=payment.currency,
            status=payment.status.value,
            amount_refunded=payment.amount_refunded,
            product=payment.product_code,
            tier=payment.tier_code,
            credits=payment.credits_granted,
            created_at=payment.created_at,
        )


class PaymentList(BaseModel):
    items: list[PaymentRead]
    next_cursor: str | None


class WebhookReceipt(BaseModel):
    received: bool = True
    duplicate: bool = Field(description="The event was received before; nothing changed.")
    outcome: str = Field(
        description="`applied`, `ignored` (a type Portico does not act on) "
        "or `failed` (stored; an operator can replay it)."
    )

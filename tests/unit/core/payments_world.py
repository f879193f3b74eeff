"""The billing world with payments: the fake gateway (an in-memory Stripe account that
signs its events) as the container picks it, and helpers to pay and to deliver."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapters.stripe.webhooks import sign
from core.identity.model import User
from core.payments.checkout import CheckoutService
from core.payments.events import EventReceipt, PaymentEventService
from core.payments.model import Payment, StoredEvent, Subscription
from core.payments.ports import PaymentGateway, PaymentsUnitOfWorkFactory
from core.payments.subscriptions import SubscriptionMaintenance
from core.shared.query import PageRequest
from tests.settings_merge import merge
from tests.unit.core.billing_world import BillingWorld

SITE = "http://testserver"
WEBHOOK_SECRET = "whsec_payments-world-secret"


@dataclass(frozen=True)
class Delivery:
    payload: bytes
    signature: str


class PaymentsWorld(BillingWorld):
    def __init__(self, **settings: Any) -> None:
        super().__init__(**merge({"stripe": {"webhook_secret": WEBHOOK_SECRET}}, settings))
        self.gateway: Any = self.services.get(PaymentGateway)
        self.simulator = self.gateway.simulator
        self.checkout = self.services.get(CheckoutService)
        self.events = self.services.get(PaymentEventService)
        self.maintenance = self.services.get(SubscriptionMaintenance)
        self.payments_uow = self.services.get(PaymentsUnitOfWorkFactory)

    async def seeded(self) -> PaymentsWorld:
        await super().seeded()
        return self

    async def buy(self, user: User, **what: str) -> list[Any]:
        """Start a checkout and pay it: the signed deliveries the gateway emitted."""
        checkout = await self.checkout.start(user, site_url=SITE, **what)
        assert checkout.gateway_session_id is not None
        return list(self.gateway.complete_checkout(checkout.gateway_session_id))

    async def deliver(self, deliveries: Sequence[Any]) -> list[EventReceipt]:
        return [await self.events.receive(d.payload, d.signature) for d in deliveries]

    def sign(self, event: dict[str, Any]) -> Delivery:
        """A delivery of `event` signed now, as the gateway would send it."""
        payload = json.dumps(event).encode()
        return Delivery(payload, sign(payload, WEBHOOK_SECRET, self.clock.now()))

    async def payments_of(self, user: User) -> list[Payment]:
        assert user.id is not None
        async with self.payments_uow(read_only=True) as tx:
            return list((await tx.payments.for_user(user.id, PageRequest(limit=100))).items)

    async def subscription_of(self, user: User) -> Subscription | None:
        assert user.id is not None
        async with self.payments_uow(read_only=True) as tx:
            return await tx.subscriptions.latest(user.id)

    async def stored_event(self, event_id: str) -> StoredEvent | None:
        async with self.payments_uow(read_only=True) as tx:
            return await tx.webhook_events.get(event_id)


def event_of(delivery: Any) -> dict[str, Any]:
    return json.loads(delivery.payload)

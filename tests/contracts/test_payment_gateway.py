"""The `PaymentGateway` contract, on the fake gateway and on `StripeGateway` talking to a
local fake Stripe server through the real SDK. Both stand on a `StripeSimulator`, which
plays the customer (paying a checkout) and the passing of time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from adapters.memory.clock import ManualClock
from adapters.stripe.fake_gateway import FakePaymentGateway
from adapters.stripe.gateway import StripeGateway
from adapters.stripe.simulator import StripeSimulator
from adapters.stripe.simulator_objects import SimulatorError
from core.payments.errors import (
    GatewayRequestError,
    PaymentDeclinedError,
    SubscriptionNotFoundError,
)
from core.payments.model import (
    CheckoutCompleted,
    CheckoutMode,
    CheckoutRequest,
    InvoiceSettled,
    SubscriptionChanged,
    SubscriptionStatus,
)
from core.payments.ports import PaymentGateway
from core.shared.errors import UnavailableError
from tests.fakes.stripe_server import running_fake_stripe

TIER_PRICE = "price_tier_pro_monthly"
PACK_PRICE = "price_pack_1000"
SITE = "http://portico.test"

# stripe 16.1 hands httpx its form body as `data=<str>`, which httpx 0.28 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@dataclass
class World:
    gateway: PaymentGateway
    simulator: StripeSimulator
    clock: ManualClock

    async def customer(self, user_id: int = 1) -> str:
        return await self.gateway.create_customer(
            user_id=user_id, email=f"user{user_id}@example.com", idempotency_key=f"cus-{user_id}"
        )

    async def checkout(self, customer: str, mode: CheckoutMode, reference: str) -> str:
        page = await self.gateway.create_checkout(
            request(customer, mode, reference), idempotency_key=f"checkout-{reference}"
        )
        return page.id

    async def subscribed(self, user_id: int = 1) -> str:
        """A customer who completed a subscription checkout: the subscription id."""
        session = await self.checkout(
            await self.customer(user_id), CheckoutMode.SUBSCRIPTION, f"chk-{user_id}"
        )
        events = self.simulator.complete_checkout_session(session)
        return str(events[0]["data"]["object"]["id"])


def request(customer: str, mode: CheckoutMode, reference: str = "chk-1") -> CheckoutRequest:
    return CheckoutRequest(
        reference=reference,
        customer_id=customer,
        mode=mode,
        price_id=TIER_PRICE if mode is CheckoutMode.SUBSCRIPTION else PACK_PRICE,
        success_url=f"{SITE}/billing/done",
        cancel_url=f"{SITE}/billing",
        site_url=SITE,
        metadata={"user_id": "1", "checkout": reference},
    )


@pytest.fixture(params=["fake", pytest.param("stripe", marks=pytest.mark.integration)])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    clock = ManualClock()
    if request.param == "fake":
        fake = FakePaymentGateway(clock, "whsec_contract")
        yield _priced(World(fake, fake.simulator, clock))
        return
    with running_fake_stripe(clock) as server:
        gateway = StripeGateway(
            server.api_key, api_base=server.base_url, timeout_seconds=5, max_retries=1
        )
        try:
            yield _priced(World(gateway, server.simulator, clock))
        finally:
            await gateway.close()


def _priced(world: World) -> World:
    world.simulator.add_price(TIER_PRICE, 2000, "usd", interval="month")
    world.simulator.add_price(PACK_PRICE, 500, "usd", interval=None)
    return world


async def test_a_customer_is_created_once_per_idempotency_key(world: World) -> None:
    first = await world.customer(1)
    assert first.startswith("cus_")
    assert await world.customer(1) == first
    assert await world.customer(2) != first


async def test_an_idempotency_key_reused_for_another_request_is_refused(world: World) -> None:
    await world.customer(1)
    with pytest.raises(GatewayRequestError):
        await world.gateway.create_customer(
            user_id=9, email="someone@example.com", idempotency_key="cus-1"
        )


@pytest.mark.parametrize("mode", [CheckoutMode.SUBSCRIPTION, CheckoutMode.PAYMENT])
async def test_a_checkout_is_a_hosted_page_created_once_per_key(
    world: World, mode: CheckoutMode
) -> None:
    customer = await world.customer()
    page = await world.gateway.create_checkout(request(customer, mode), idempotency_key="k")
    assert page.id.startswith("cs_")
    assert page.url.startswith("http") and page.url.endswith(f"/{page.id}")
    again = await world.gateway.create_checkout(request(customer, mode), idempotency_key="k")
    assert again == page
    other = await world.gateway.create_checkout(request(customer, mode), idempotency_key="k2")
    assert other.id != page.id
    session = world.simulator.retrieve_checkout_session(page.id)
    assert (session["mode"], session["client_reference_id"]) == (mode.value, "chk-1")
    assert session["customer"] == customer
    assert session["success_url"] == f"{SITE}/billing/done"
    assert session["metadata"] == {"user_id": "1", "checkout": "chk-1"}


async def test_a_price_the_gateway_does_not_know_is_a_request_error(world: World) -> None:
    customer = await world.customer()
    unknown = CheckoutRequest(
        reference="chk-x",
        customer_id=customer,
        mode=CheckoutMode.PAYMENT,
        price_id="price_nobody_made",
        success_url=f"{SITE}/ok",
        cancel_url=f"{SITE}/no",
        site_url=SITE,
    )
    with pytest.raises(GatewayRequestError):
        await world.gateway.create_checkout(unknown, idempotency_key="k")


async def test_a_completed_subscription_checkout_is_the_subscription_read_back(
    world: World,
) -> None:
    sub_id = await world.subscribed()
    found = await world.gateway.get_subscription(sub_id)
    assert found is not None
    assert found.id == sub_id and found.customer_id == await world.customer()
    assert found.status is SubscriptionStatus.ACTIVE
    assert found.price_id == TIER_PRICE
    assert found.current_period_end == world.clock.now().replace(month=2)
    assert not found.cancel_at_period_end and found.canceled_at is None
    assert found.metadata == {"user_id": "1", "checkout": "chk-1"}


async def test_cancel_at_period_end_resume_and_cancel_now(world: World) -> None:
    sub_id = await world.subscribed()
    ending = await world.gateway.cancel_subscription(
        sub_id, at_period_end=True, idempotency_key="cancel-1"
    )
    assert ending.cancel_at_period_end and ending.status is SubscriptionStatus.ACTIVE
    resumed = await world.gateway.resume_subscription(sub_id, idempotency_key="resume-1")
    assert not resumed.cancel_at_period_end and resumed.status is SubscriptionStatus.ACTIVE
    world.clock.advance(60)
    ended = await world.gateway.cancel_subscription(
        sub_id, at_period_end=False, idempotency_key="cancel-2"
    )
    assert ended.status is SubscriptionStatus.CANCELED
    assert ended.canceled_at == world.clock.now()
    again = await world.gateway.cancel_subscription(
        sub_id, at_period_end=False, idempotency_key="cancel-2"
    )
    assert again == ended  # the same key: the first answer, not a refusal
    current = await world.gateway.get_subscription(sub_id)
    assert current is not None and current.status is SubscriptionStatus.CANCELED


async def test_unknown_subscriptions_cannot_be_cancelled_or_resumed(world: World) -> None:
    with pytest.raises(SubscriptionNotFoundError):
        await world.gateway.cancel_subscription(
            "sub_unknown", at_period_end=True, idempotency_key="c"
        )
    with pytest.raises(SubscriptionNotFoundError):
        await world.gateway.cancel_subscription(
            "sub_unknown", at_period_end=False, idempotency_key="c2"
        )
    with pytest.raises(SubscriptionNotFoundError):
        await world.gateway.resume_subscription("sub_unknown", idempotency_key="r")


async def test_unknown_subscriptions_and_events_read_as_none(world: World) -> None:
    assert await world.gateway.get_subscription("sub_unknown") is None
    assert await world.gateway.get_event("evt_unknown") is None


async def test_a_paid_credit_pack_checkout_is_an_event_with_its_amount(world: World) -> None:
    session = await world.checkout(await world.customer(), CheckoutMode.PAYMENT, "pack-1")
    world.simulator.complete_checkout_session(session)
    events = await world.gateway.events_since(world.clock.now(), limit=10)
    assert [e.type for e in events] == ["charge.succeeded", "checkout.session.completed"]
    completed = events[1].subject
    assert isinstance(completed, CheckoutCompleted)
    assert (completed.session_id, completed.reference) == (session, "pack-1")
    assert completed.mode is CheckoutMode.PAYMENT and completed.paid
    assert (completed.amount_total, completed.currency) == (5_000_000, "usd")
    assert completed.payment_id is not None and completed.payment_id.startswith("pi_")
    assert events[0].subject is None  # a type Portico does not act on


async def test_events_since_are_oldest_first_from_since_and_at_most_limit(world: World) -> None:
    start = world.clock.now()
    await world.subscribed(1)  # three events at start
    world.clock.advance(3600)
    later = world.clock.now()
    await world.subscribed(2)  # three more, an hour later
    everything = await world.gateway.events_since(start, limit=100)
    expected = [e["id"] for e in world.simulator.events_since(start)]
    assert [e.id for e in everything] == expected and len(expected) == 6
    assert [e.type for e in everything[:3]] == [
        "customer.subscription.created",
        "invoice.paid",
        "checkout.session.completed",
    ]
    assert [e.id for e in await world.gateway.events_since(start, limit=2)] == expected[:2]
    assert [e.id for e in await world.gateway.events_since(later, limit=100)] == expected[3:]
    assert await world.gateway.events_since(later + timedelta(seconds=1), limit=100) == []
    assert all(e.created >= start for e in everything)


async def test_an_event_is_read_by_id_with_its_subject(world: World) -> None:
    sub_id = await world.subscribed()
    paid = world.simulator.events_since(world.clock.now())[1]
    found = await world.gateway.get_event(paid["id"])
    assert found is not None
    assert (found.id, found.type, found.created) == (paid["id"], "invoice.paid", world.clock.now())
    assert isinstance(found.subject, InvoiceSettled)
    assert found.subject.subscription_id == sub_id and found.subject.paid
    assert found.subject.amount == 20_000_000
    created = await world.gateway.get_event(
        world.simulator.events_since(world.clock.now())[0]["id"]
    )
    assert created is not None and isinstance(created.subject, SubscriptionChanged)


async def test_a_portal_session_is_a_hosted_page(world: World) -> None:
    customer = await world.customer()
    page = await world.gateway.create_portal(
        customer_id=customer, return_url=f"{SITE}/billing", site_url=SITE
    )
    assert page.id.startswith("bps_") and page.url.startswith("http")
    portal = world.simulator.retrieve_portal_session(page.id)
    assert (portal["customer"], portal["return_url"]) == (customer, f"{SITE}/billing")
    with pytest.raises(GatewayRequestError):
        await world.gateway.create_portal(
            customer_id="cus_unknown", return_url=f"{SITE}/billing", site_url=SITE
        )


async def test_a_declined_card_and_an_outage_are_the_ports_errors(world: World) -> None:
    world.simulator.fail_next(SimulatorError.card_declined())
    with pytest.raises(PaymentDeclinedError):
        await world.customer()
    # More failures than any retry policy here takes: the outage outlasts the call.
    world.simulator.fail_next(SimulatorError.unavailable(), times=5)
    with pytest.raises(UnavailableError):
        await world.gateway.get_subscription("sub_any")

"""What the fake gateway does beyond the port (its contract is in tests/contracts): URLs
on the site, the hosted pages' views and actions, signed deliveries, its prices."""

from __future__ import annotations

import json

import pytest

from adapters.memory.clock import ManualClock
from adapters.stripe.fake_gateway import FakePaymentGateway, SignedDelivery
from adapters.stripe.simulator_objects import SimulatorError
from adapters.stripe.webhooks import StripeWebhookVerifier
from core.payments.errors import (
    CheckoutNotFoundError,
    GatewayRequestError,
    PaymentDeclinedError,
    SubscriptionNotFoundError,
)
from core.payments.model import (
    ChargeRefunded,
    CheckoutCompleted,
    CheckoutMode,
    CheckoutRequest,
    GatewayEvent,
    InvoiceSettled,
    SubscriptionChanged,
    SubscriptionStatus,
)
from core.shared.errors import NotFoundError, RuleViolationError, UnavailableError

SECRET = "whsec_fake"
SITE = "http://localhost:8000"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gateway(clock: ManualClock) -> FakePaymentGateway:
    fake = FakePaymentGateway(clock, SECRET)
    fake.register_price("price_pro", 20_000_000, "usd", recurring=True)
    fake.register_price("price_pack", 5_000_000, "usd", recurring=False)
    return fake


def request(
    customer: str, mode: CheckoutMode, price: str, reference: str = "chk_1"
) -> CheckoutRequest:
    return CheckoutRequest(
        reference=reference,
        customer_id=customer,
        mode=mode,
        price_id=price,
        success_url=f"{SITE}/billing/done",
        cancel_url=f"{SITE}/billing",
        site_url=f"{SITE}/",
        metadata={"user_id": "1"},
    )


async def started(
    gateway: FakePaymentGateway, mode: CheckoutMode = CheckoutMode.SUBSCRIPTION
) -> str:
    customer = await gateway.create_customer(user_id=1, email="a@example.com", idempotency_key="c")
    price = "price_pro" if mode is CheckoutMode.SUBSCRIPTION else "price_pack"
    page = await gateway.create_checkout(request(customer, mode, price), idempotency_key="k")
    return page.id


def verified(deliveries: list[SignedDelivery], clock: ManualClock) -> list[GatewayEvent]:
    verifier = StripeWebhookVerifier(SECRET)
    return [verifier.verify(d.payload, d.signature, clock.now()) for d in deliveries]


async def test_checkout_and_portal_urls_are_on_the_site(gateway: FakePaymentGateway) -> None:
    session = await started(gateway)
    customer = gateway.simulator.retrieve_checkout_session(session)["customer"]
    assert gateway.simulator.retrieve_checkout_session(session)["url"] == (
        f"{SITE}/fake-gateway/checkout/{session}"
    )
    portal = await gateway.create_portal(
        customer_id=customer, return_url=f"{SITE}/billing", site_url=SITE
    )
    assert portal.url == f"{SITE}/fake-gateway/portal/{portal.id}"


async def test_the_checkout_view(gateway: FakePaymentGateway) -> None:
    session = await started(gateway)
    view = gateway.checkout_view(session)
    assert view is not None
    assert (view.session_id, view.mode, view.description) == (
        session,
        CheckoutMode.SUBSCRIPTION,
        "price_pro",
    )
    assert (view.amount, view.currency, view.status) == (20_000_000, "usd", "open")
    assert (view.success_url, view.cancel_url) == (f"{SITE}/billing/done", f"{SITE}/billing")
    assert gateway.checkout_view("cs_unknown") is None


async def test_completing_a_checkout_gives_signed_deliveries(
    gateway: FakePaymentGateway, clock: ManualClock
) -> None:
    session = await started(gateway)
    clock.advance(30)
    events = verified(gateway.complete_checkout(session), clock)
    assert [e.type for e in events] == [
        "customer.subscription.created",
        "invoice.paid",
        "checkout.session.completed",
    ]
    assert all(e.created == clock.now() for e in events)
    completed = events[2].subject
    assert isinstance(completed, CheckoutCompleted)
    assert completed.reference == "chk_1" and completed.paid
    view = gateway.checkout_view(session)
    assert view is not None and view.status == "complete"
    assert gateway.complete_checkout(session) == []


async def test_a_delivery_is_the_event_as_stripe_serializes_it(
    gateway: FakePaymentGateway, clock: ManualClock
) -> None:
    session = await started(gateway, CheckoutMode.PAYMENT)
    delivery = gateway.complete_checkout(session)[1]
    body = json.loads(delivery.payload)
    assert body["object"] == "event" and body["type"] == "checkout.session.completed"
    assert body == gateway.simulator.retrieve_event(body["id"])
    assert delivery.signature.startswith(f"t={int(clock.now().timestamp())},v1=")


def test_completing_an_unknown_checkout_is_not_found(gateway: FakePaymentGateway) -> None:
    with pytest.raises(CheckoutNotFoundError):
        gateway.complete_checkout("cs_unknown")


async def test_a_declined_card_at_checkout(gateway: FakePaymentGateway) -> None:
    session = await started(gateway)
    gateway.simulator.decline_next_checkout()
    with pytest.raises(PaymentDeclinedError):
        gateway.complete_checkout(session)
    assert len(gateway.complete_checkout(session)) == 3


async def test_the_portal_view_and_its_actions(
    gateway: FakePaymentGateway, clock: ManualClock
) -> None:
    session = await started(gateway)
    gateway.complete_checkout(session)
    customer = gateway.simulator.retrieve_checkout_session(session)["customer"]
    portal = await gateway.create_portal(
        customer_id=customer, return_url=f"{SITE}/b", site_url=SITE
    )
    view = gateway.portal_view(portal.id)
    assert view is not None and view.subscription is not None
    assert (view.customer_id, view.return_url) == (customer, f"{SITE}/b")
    assert view.subscription.status is SubscriptionStatus.ACTIVE

    ending = verified(gateway.portal_action(portal.id, "cancel_at_period_end"), clock)
    assert [e.type for e in ending] == ["customer.subscription.updated"]
    assert isinstance(ending[0].subject, SubscriptionChanged)
    assert ending[0].subject.subscription.cancel_at_period_end
    assert gateway.portal_action(portal.id, "cancel_at_period_end") == []  # nothing changed
    resumed = verified(gateway.portal_action(portal.id, "resume"), clock)
    assert not resumed[0].subject.subscription.cancel_at_period_end  # type: ignore[union-attr]
    ended = verified(gateway.portal_action(portal.id, "cancel_now"), clock)
    assert [e.type for e in ended] == ["customer.subscription.deleted"]

    after = gateway.portal_view(portal.id)
    assert after is not None and after.subscription is None
    with pytest.raises(SubscriptionNotFoundError):
        gateway.portal_action(portal.id, "resume")


async def test_portal_refusals(gateway: FakePaymentGateway) -> None:
    assert gateway.portal_view("bps_unknown") is None
    with pytest.raises(NotFoundError):
        gateway.portal_action("bps_unknown", "cancel_now")
    with pytest.raises(RuleViolationError):
        gateway.portal_action("bps_unknown", "explode")  # type: ignore[arg-type]


async def test_renewals_and_refunds_as_deliveries(
    gateway: FakePaymentGateway, clock: ManualClock
) -> None:
    gateway.complete_checkout(await started(gateway))
    sub_id = gateway.simulator.events_since(clock.now())[0]["data"]["object"]["id"]
    failed = verified(gateway.renew_subscription(sub_id, paid=False), clock)
    assert [e.type for e in failed] == ["invoice.payment_failed", "customer.subscription.updated"]
    paid = verified(gateway.renew_subscription(sub_id), clock)
    settled = paid[0].subject
    assert isinstance(settled, InvoiceSettled) and settled.paid and settled.payment_id
    refunded = verified(gateway.refund_payment(settled.payment_id, 5_000_000), clock)
    assert refunded[0].subject == ChargeRefunded(
        charge_id=refunded[0].subject.charge_id,  # type: ignore[union-attr]
        payment_id=settled.payment_id,
        amount=20_000_000,
        amount_refunded=5_000_000,
        currency="usd",
    )


async def test_registered_prices_sell_in_their_mode_only(gateway: FakePaymentGateway) -> None:
    customer = await gateway.create_customer(user_id=1, email="a@example.com", idempotency_key="c")
    wrong = request(customer, CheckoutMode.PAYMENT, "price_pro")
    with pytest.raises(GatewayRequestError):
        await gateway.create_checkout(wrong, idempotency_key="k1")
    with pytest.raises(ValueError):
        gateway.register_price("price_odd", 1_234, "usd", recurring=False)


async def test_prices_given_in_minor_units_sell_in_either_mode(clock: ManualClock) -> None:
    fake = FakePaymentGateway(clock, SECRET, prices={"price_any": (999, "usd")})
    fake.set_price("price_yen", 500, "jpy")
    customer = await fake.create_customer(user_id=1, email="a@example.com", idempotency_key="c")
    for n, mode in enumerate(CheckoutMode):
        page = await fake.create_checkout(
            request(customer, mode, "price_any"), idempotency_key=f"k{n}"
        )
        view = fake.checkout_view(page.id)
        assert view is not None and view.amount == 9_990_000
    page = await fake.create_checkout(
        request(customer, CheckoutMode.PAYMENT, "price_yen"), idempotency_key="yen"
    )
    view = fake.checkout_view(page.id)
    assert view is not None and (view.amount, view.currency) == (500_000_000, "jpy")


async def test_a_simulated_outage_is_unavailable(gateway: FakePaymentGateway) -> None:
    gateway.simulator.fail_next(SimulatorError.unavailable(500))
    with pytest.raises(UnavailableError) as unavailable:
        await gateway.create_customer(user_id=1, email="a@example.com", idempotency_key="c")
    assert unavailable.value.dependency == "payment_gateway"
    # The failure left nothing behind for the key: the retry creates the customer.
    assert await gateway.create_customer(user_id=1, email="a@example.com", idempotency_key="c")


async def test_events_since_with_no_room_is_empty(
    gateway: FakePaymentGateway, clock: ManualClock
) -> None:
    gateway.complete_checkout(await started(gateway))
    assert await gateway.events_since(clock.now(), limit=0) == []


def test_the_fake_needs_a_webhook_secret(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        FakePaymentGateway(clock, " ")

"""`StripeGateway` on the real SDK against the local fake Stripe server: errors mapped to
the port's, retries that reuse the idempotency key, timeouts that bound a call, paging."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from adapters.memory.clock import ManualClock
from adapters.stripe import gateway as gateway_module
from adapters.stripe.gateway import StripeGateway
from core.payments.errors import GatewayRequestError, PaymentDeclinedError
from core.payments.model import CheckoutMode, CheckoutRequest
from core.shared.errors import UnavailableError
from tests.fakes.stripe_server import (
    FakeStripeServer,
    fake_stripe,  # noqa: F401 (the fixture, requested by name)
    running_fake_stripe,
)

pytestmark = [
    pytest.mark.integration,
    # stripe 16.1 hands httpx its form body as `data=<str>`, which httpx 0.28 deprecates.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]

TIMEOUT = 0.5


@pytest.fixture
def server(request: pytest.FixtureRequest) -> FakeStripeServer:
    found: FakeStripeServer = request.getfixturevalue("fake_stripe")
    return found


@pytest.fixture
async def gateway(server: FakeStripeServer) -> AsyncIterator[StripeGateway]:
    found = StripeGateway(
        server.api_key, api_base=server.base_url, timeout_seconds=TIMEOUT, max_retries=2
    )
    try:
        yield found
    finally:
        await found.close()


async def create_customer(gateway: StripeGateway, key: str = "cus-1") -> str:
    return await gateway.create_customer(user_id=1, email="a@example.com", idempotency_key=key)


async def test_a_card_decline_is_payment_declined_and_not_retried(
    server: FakeStripeServer, gateway: StripeGateway
) -> None:
    server.decline_next()
    with pytest.raises(PaymentDeclinedError) as declined:
        await create_customer(gateway)
    assert declined.value.reason == "payment_declined"
    assert declined.value.detail == "Your card was declined."
    assert len(server.requests_to("POST", "/v1/customers")) == 1


async def test_a_5xx_is_retried_with_the_same_idempotency_key(
    server: FakeStripeServer, gateway: StripeGateway
) -> None:
    server.fail_next(503)
    customer = await create_customer(gateway)
    sent = server.requests_to("POST", "/v1/customers")
    assert [r.idempotency_key for r in sent] == ["cus-1", "cus-1"]
    assert server.simulator.customer_ids() == [customer]


async def test_an_answer_lost_after_the_work_is_replayed_not_redone(
    server: FakeStripeServer, gateway: StripeGateway
) -> None:
    server.fail_next(500, after=True)  # the customer is created, its answer lost
    customer = await create_customer(gateway)
    assert len(server.requests_to("POST", "/v1/customers")) == 2
    assert server.simulator.customer_ids() == [customer]


async def test_5xx_beyond_the_retries_is_unavailable(
    server: FakeStripeServer, gateway: StripeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    server.fail_next(503, times=3)
    with pytest.raises(UnavailableError) as unavailable:
        await create_customer(gateway)
    assert unavailable.value.dependency == "stripe"
    assert len(server.requests_to("POST", "/v1/customers")) == 3  # 1 + max_retries
    assert server.simulator.customer_ids() == []
    assert "stripe unavailable" in caplog.text


async def test_rate_limiting_is_unavailable(
    server: FakeStripeServer, gateway: StripeGateway
) -> None:
    server.fail_next(429)
    with pytest.raises(UnavailableError):
        await gateway.get_subscription("sub_any")


async def test_an_unreachable_stripe_is_unavailable() -> None:
    with running_fake_stripe() as stopped:
        base_url = stopped.base_url
    gateway = StripeGateway("sk_test_x", api_base=base_url, timeout_seconds=TIMEOUT, max_retries=0)
    try:
        with pytest.raises(UnavailableError):
            await gateway.get_event("evt_any")
    finally:
        await gateway.close()


async def test_a_hanging_stripe_is_unavailable_within_the_timeout(
    server: FakeStripeServer,
) -> None:
    gateway = StripeGateway(
        server.api_key, api_base=server.base_url, timeout_seconds=TIMEOUT, max_retries=0
    )
    server.hang_next(10 * TIMEOUT)
    started = time.monotonic()
    try:
        with pytest.raises(UnavailableError):
            await gateway.get_subscription("sub_any")
    finally:
        await gateway.close()
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 1.0


async def test_retried_timeouts_stay_within_the_deadline(
    server: FakeStripeServer, gateway: StripeGateway
) -> None:
    server.hang_next(10 * TIMEOUT, times=3)
    started = time.monotonic()
    with pytest.raises(UnavailableError):
        await gateway.get_subscription("sub_any")
    elapsed = time.monotonic() - started
    assert 3 * TIMEOUT <= elapsed < gateway.deadline_seconds
    assert len(server.requests_to("GET", "/v1/subscriptions/sub_any")) == 3


async def test_a_timeout_then_an_answer_succeeds(
    server: FakeStripeServer, gateway: StripeGateway
) -> None:
    server.hang_next(10 * TIMEOUT)
    customer = await create_customer(gateway)
    sent = server.requests_to("POST", "/v1/customers")
    assert [r.idempotency_key for r in sent] == ["cus-1", "cus-1"]
    assert server.simulator.customer_ids() == [customer]


async def test_an_invalid_request_is_a_request_error_logged_and_not_retried(
    server: FakeStripeServer, gateway: StripeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    customer = await create_customer(gateway)
    request = CheckoutRequest(
        reference="chk-1",
        customer_id=customer,
        mode=CheckoutMode.PAYMENT,
        price_id="price_missing",
        success_url="http://portico.test/ok",
        cancel_url="http://portico.test/no",
        site_url="http://portico.test",
    )
    with (
        caplog.at_level(logging.ERROR, logger="adapters.stripe.gateway"),
        pytest.raises(GatewayRequestError),
    ):
        await gateway.create_checkout(request, idempotency_key="chk-1")
    assert len(server.requests_to("POST", "/v1/checkout/sessions")) == 1
    assert "stripe refused a request: InvalidRequestError (status 400" in caplog.text
    assert "price_missing" in caplog.text


async def test_a_wrong_api_key_is_a_request_error(server: FakeStripeServer) -> None:
    gateway = StripeGateway("sk_test_wrong", api_base=server.base_url, timeout_seconds=TIMEOUT)
    try:
        with pytest.raises(GatewayRequestError):
            await create_customer(gateway)
    finally:
        await gateway.close()


async def test_checkout_sends_what_stripe_needs(
    server: FakeStripeServer, gateway: StripeGateway
) -> None:
    server.simulator.add_price("price_pro", 2000, "usd")
    customer = await create_customer(gateway)
    request = CheckoutRequest(
        reference="chk-1",
        customer_id=customer,
        mode=CheckoutMode.SUBSCRIPTION,
        price_id="price_pro",
        success_url="http://portico.test/ok",
        cancel_url="http://portico.test/no",
        site_url="http://portico.test",
        metadata={"user_id": "1"},
    )
    await gateway.create_checkout(request, idempotency_key="chk-1")
    (sent,) = server.requests_to("POST", "/v1/checkout/sessions")
    assert sent.idempotency_key == "chk-1"
    assert sent.params == {
        "mode": "subscription",
        "line_items": [{"price": "price_pro", "quantity": "1"}],
        "customer": customer,
        "client_reference_id": "chk-1",
        "success_url": "http://portico.test/ok",
        "cancel_url": "http://portico.test/no",
        "metadata": {"user_id": "1"},
        "subscription_data": {"metadata": {"user_id": "1"}},
    }


async def test_events_since_pages_through_newest_first_lists(
    server: FakeStripeServer, gateway: StripeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway_module, "EVENTS_PAGE_SIZE", 2)
    sim, clock = server.simulator, ManualClock()
    sim.add_price("price_pack", 500, "usd", interval=None)
    customer = sim.create_customer()["id"]
    start = clock.now()
    for n in range(4):  # two events each: charge.succeeded, checkout.session.completed
        session = sim.create_checkout_session(
            mode="payment",
            price_id="price_pack",
            url_base="http://x",
            success_url="http://x/ok",
            customer=customer,
            client_reference_id=f"chk-{n}",
        )
        sim.complete_checkout_session(session["id"])
    expected = [e["id"] for e in sim.events_since(start)]
    found = await gateway.events_since(start, limit=5)
    assert [e.id for e in found] == expected[:5]
    pages = server.requests_to("GET", "/v1/events")
    assert len(pages) == 4  # 8 events, 2 a page, newest first: every page is read
    assert pages[0].params == {"created": {"gte": str(int(start.timestamp()))}, "limit": "2"}
    assert pages[1].params["starting_after"] == expected[-2]
    assert await gateway.events_since(start + timedelta(days=1), limit=5) == []


async def test_the_older_api_shapes_read_the_same() -> None:
    with running_fake_stripe(legacy_api=True) as server:
        gateway = StripeGateway(server.api_key, api_base=server.base_url)
        try:
            sim = server.simulator
            sim.add_price("price_pro", 2000, "usd")
            customer = sim.create_customer()["id"]
            session = sim.create_checkout_session(
                mode="subscription",
                price_id="price_pro",
                url_base="http://x",
                success_url="http://x/ok",
                customer=customer,
            )
            created, paid, _ = sim.complete_checkout_session(session["id"])
            sub = created["data"]["object"]
            assert "current_period_end" in sub and "subscription" in paid["data"]["object"]
            found = await gateway.get_subscription(sub["id"])
            assert found is not None and found.current_period_end is not None
            assert int(found.current_period_end.timestamp()) == sub["current_period_end"]
        finally:
            await gateway.close()

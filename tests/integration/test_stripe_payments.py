"""Payments end to end on Postgres with the Stripe adapter on the real SDK, pointed at a
local fake Stripe server: checkout through the API, webhook deliveries signed with
Stripe's scheme (one delivered 20 times at once), a lost event reconciled, a replay
that changes nothing, a refund, and a subscription cancelled through the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from adapters.stripe.webhooks import sign
from adapters.system.clock import SystemClock
from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.seed import seed_catalog
from core.payments.events import PaymentEventService
from core.shared.clock import Clock
from entrypoints.http.app import create_app
from tests.fakes.stripe_server import FakeStripeServer, running_fake_stripe
from tests.unit.http.profiles import profile_settings
from tests.unit.http.support import Browser

pytestmark = pytest.mark.integration

SECRET = "whsec_integration-secret"
WEBHOOK = "/api/v1/webhooks/stripe"


@pytest.fixture
def stripe_server() -> Iterator[FakeStripeServer]:
    with running_fake_stripe(SystemClock()) as server:
        server.simulator.add_price("price_credits_small", 500, "usd", interval=None)
        server.simulator.add_price("price_pro_monthly", 2_000, "usd")
        yield server


@pytest.fixture
def client(
    request: pytest.FixtureRequest, tmp_path: Path, stripe_server: FakeStripeServer
) -> Iterator[TestClient]:
    settings = profile_settings(
        "services",
        request,
        tmp_path,
        payments={"backend": "stripe", "timeout_seconds": 5, "max_retries": 1},
        stripe={
            "api_key": stripe_server.api_key,
            "api_base": stripe_server.base_url,
            "webhook_secret": SECRET,
        },
    )
    with TestClient(create_app(settings)) as test_client:
        runtime = test_client.app.state.runtime  # type: ignore[attr-defined]
        assert test_client.portal is not None
        test_client.portal.call(lambda: seed_catalog(runtime.get(CatalogService)))
        yield test_client


def _call(client: TestClient, kind: type, method: str, *args: Any) -> Any:
    service = client.app.state.runtime.get(kind)  # type: ignore[attr-defined]
    assert client.portal is not None
    return client.portal.call(lambda: getattr(service, method)(*args))


def _signed(client: TestClient, event: dict[str, Any]) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    now = client.app.state.runtime.get(Clock).now()  # type: ignore[attr-defined]
    return payload, sign(payload, SECRET, now)


def _deliver(client: TestClient, event: dict[str, Any]) -> Any:
    payload, signature = _signed(client, event)
    return client.post(WEBHOOK, content=payload, headers={"Stripe-Signature": signature})


def _checkout(browser: Browser, server: FakeStripeServer, **what: str) -> list[dict[str, Any]]:
    response = browser.post("/api/v1/billing/checkout", json=what)
    assert response.status_code == 200, response.text
    url = response.json()["url"]
    assert url.startswith(server.base_url)
    return server.simulator.complete_checkout_session(url.rsplit("/", 1)[-1])


def _user_id(browser: Browser) -> int:
    return int(browser.me().json()["id"])


def test_a_credit_pack_delivered_20_times_at_once_is_granted_once(
    client: TestClient, stripe_server: FakeStripeServer
) -> None:
    browser = Browser(client)
    browser.signup()
    events = _checkout(browser, stripe_server, credit_pack="small")
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    payload, signature = _signed(client, completed)

    def post(_: int) -> Any:
        return client.post(WEBHOOK, content=payload, headers={"Stripe-Signature": signature})

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert sum(not a.json()["duplicate"] for a in answers) == 1
    assert browser.get("/api/v1/credits").json()["balance"] == 1_000
    assert len(browser.get("/api/v1/billing/payments").json()["items"]) == 1

    # A refund takes the credits back.
    charge = next(e for e in events if e["type"] == "charge.succeeded")["data"]["object"]
    for event in stripe_server.simulator.refund_charge(charge["id"]):
        assert _deliver(client, event).status_code == 200
    assert browser.get("/api/v1/credits").json()["balance"] == 0
    (payment,) = browser.get("/api/v1/billing/payments").json()["items"]
    assert payment["status"] == "refunded" and payment["amount_refunded"] == 5_000_000


def test_bad_deliveries_are_400_and_write_nothing(
    client: TestClient, stripe_server: FakeStripeServer
) -> None:
    browser = Browser(client)
    browser.signup()
    events = _checkout(browser, stripe_server, credit_pack="small")
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    payload, signature = _signed(client, completed)
    now = client.app.state.runtime.get(Clock).now()  # type: ignore[attr-defined]
    for body, header, code in (
        (payload + b" ", signature, "invalid_signature"),
        (payload, sign(payload, "whsec_other", now), "invalid_signature"),
        (payload, sign(payload, SECRET, now - timedelta(seconds=301)), "stale_timestamp"),
        (payload, sign(payload, SECRET, now + timedelta(seconds=301)), "stale_timestamp"),
        (b"[1, 2", sign(b"[1, 2", SECRET, now), "malformed_event"),
    ):
        answer = client.post(WEBHOOK, content=body, headers={"Stripe-Signature": header})
        assert (answer.status_code, answer.json()["code"]) == (400, code)
    assert browser.get("/api/v1/credits").json()["balance"] == 0
    assert _deliver(client, completed).json() == {
        "received": True,
        "duplicate": False,
        "outcome": "applied",
    }


def test_a_lost_event_is_reconciled_and_a_replay_changes_nothing(
    client: TestClient, stripe_server: FakeStripeServer
) -> None:
    browser = Browser(client)
    browser.signup()
    events = _checkout(browser, stripe_server, credit_pack="small")  # never delivered
    since = client.app.state.runtime.get(Clock).now() - timedelta(hours=1)  # type: ignore[attr-defined]
    run = _call(client, PaymentEventService, "reconcile", since)
    assert run.applied == len(events)
    user_id = _user_id(browser)
    assert _call(client, CreditService, "balance", user_id) == 1_000
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    receipt = _call(client, PaymentEventService, "replay", completed["id"])
    assert receipt.outcome.value == "applied"
    assert _call(client, CreditService, "balance", user_id) == 1_000
    assert _deliver(client, completed).json()["duplicate"] is True


def test_a_subscription_through_stripe_drives_the_tier(
    client: TestClient, stripe_server: FakeStripeServer
) -> None:
    browser = Browser(client)
    browser.signup()
    for event in _checkout(browser, stripe_server, tier="pro"):
        assert _deliver(client, event).status_code == 200
    assert browser.me().json()["tier"] == "pro"
    cancelled = browser.post("/api/v1/billing/subscription/cancel", json={})
    assert cancelled.status_code == 200 and cancelled.json()["cancel_at_period_end"] is True
    assert browser.me().json()["tier"] == "pro"
    ended = browser.post("/api/v1/billing/subscription/cancel", json={"at_period_end": False})
    assert ended.status_code == 200 and ended.json()["status"] == "canceled"
    assert browser.me().json()["tier"] == "free"
    # The gateway's own events about it arrive later and change nothing more.
    since = client.app.state.runtime.get(Clock).now() - timedelta(hours=1)  # type: ignore[attr-defined]
    for event in stripe_server.simulator.events_since(since):
        assert _deliver(client, event).status_code == 200
    assert browser.me().json()["tier"] == "free"


def test_stripe_down_is_a_503(client: TestClient, stripe_server: FakeStripeServer) -> None:
    browser = Browser(client)
    browser.signup()
    stripe_server.fail_next(503, times=10)
    answer = browser.post("/api/v1/billing/checkout", json={"credit_pack": "small"})
    assert answer.status_code == 503 and "Retry-After" in answer.headers

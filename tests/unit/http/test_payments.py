"""Buying through HTTP on every profile: a credit pack through the fake gateway's pages,
end to end (checkout, the pay page, the POST that completes it, the webhook path), and
the Stripe webhook endpoint's refusals."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.testclient import TestClient

from core.billing.catalog import CatalogService
from core.billing.seed import seed_catalog
from tests.unit.http.support import Browser

WEBHOOK = "/api/v1/webhooks/stripe"


def _seeded(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert client.portal is not None
    client.portal.call(lambda: seed_catalog(runtime.get(CatalogService)))


def _checkout(browser: Browser, **what: str) -> str:
    response = browser.post("/api/v1/billing/checkout", json=what)
    assert response.status_code == 200, response.text
    url = str(response.json()["url"])
    assert url.startswith("http://testserver/fake-gateway/checkout/")
    return urlsplit(url).path


def test_a_credit_pack_bought_through_the_fake_gateway_is_granted_once(
    client: TestClient, browser: Browser, new_browser: object
) -> None:
    _seeded(client)
    browser.signup()
    path = _checkout(browser, credit_pack="small")

    page = browser.get(path)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Pay</button>" in page.text and "5.00 USD" in page.text
    assert "form-action 'self'" in page.headers["content-security-policy"]

    # Anyone holding the URL completes it: no session, no CSRF token.
    stranger = Browser(client)
    paid = stranger.post(path, follow_redirects=False)
    assert paid.status_code == 303
    assert paid.headers["location"] == "http://localhost:3000/billing/success"
    again = stranger.post(path, follow_redirects=False)
    assert again.status_code == 303

    credits = browser.get("/api/v1/credits").json()
    assert credits["balance"] == 1_000 and len(credits["items"]) == 1
    entitlements = browser.get("/api/v1/me/entitlements").json()
    assert entitlements["credits"] == 1_000
    payments = browser.get("/api/v1/billing/payments").json()["items"]
    assert [(p["kind"], p["amount"], p["status"]) for p in payments] == [
        ("credit_pack", 5_000_000, "succeeded")
    ]


def test_a_tier_bought_through_the_fake_gateway_moves_the_user(
    client: TestClient, browser: Browser
) -> None:
    _seeded(client)
    browser.signup()
    assert browser.get("/api/v1/billing/subscription").json()["status"] == "none"
    path = _checkout(browser, tier="pro")
    assert browser.post(path, follow_redirects=False).status_code == 303
    assert browser.me().json()["tier"] == "pro"
    subscription = browser.get("/api/v1/billing/subscription").json()
    assert subscription["tier"] == "pro" and subscription["status"] == "active"
    assert subscription["cancel_at_period_end"] is False
    second = browser.post("/api/v1/billing/checkout", json={"tier": "enterprise"})
    assert second.status_code == 409 and second.json()["code"] == "subscription_exists"

    ending = browser.post("/api/v1/billing/subscription/cancel", json={})
    assert ending.status_code == 200 and ending.json()["cancel_at_period_end"] is True
    assert browser.me().json()["tier"] == "pro"
    ended = browser.post("/api/v1/billing/subscription/cancel", json={"at_period_end": False})
    assert ended.status_code == 200 and ended.json()["status"] == "canceled"
    assert browser.me().json()["tier"] == "free"

    portal = browser.post("/api/v1/billing/portal")
    assert portal.status_code == 200
    assert portal.json()["url"].startswith("http://testserver/fake-gateway/portal/")


def test_checkout_input_is_checked(client: TestClient, browser: Browser) -> None:
    _seeded(client)
    browser.signup()
    for body, status, code in (
        ({}, 422, "validation_failed"),
        ({"tier": "pro", "credit_pack": "small"}, 422, "validation_failed"),
        ({"credit_pack": None}, 422, "validation_failed"),  # found by the fuzzer: was a 500
        ({"tier": "Pro!"}, 422, "validation_failed"),
        ({"tier": "free"}, 422, "not_for_sale"),
        ({"credit_pack": "nope"}, 422, "not_for_sale"),
    ):
        response = browser.post("/api/v1/billing/checkout", json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    anonymous = Browser(client).post("/api/v1/billing/checkout", json={"tier": "pro"})
    assert anonymous.status_code == 401


def test_the_webhook_refuses_what_it_cannot_verify_and_writes_nothing(
    client: TestClient, browser: Browser
) -> None:
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "invoice.paid",
        "created": 1,
        "data": {"object": {}},
    }
    body = json.dumps(event).encode()
    for headers in ({}, {"Stripe-Signature": "t=1,v1=deadbeef"}, {"Stripe-Signature": "junk"}):
        response = client.post(WEBHOOK, content=body, headers=headers)
        assert response.status_code == 400, headers
        assert response.json()["code"] == "invalid_signature"
    malformed = client.post(WEBHOOK, content=b"{not json", headers={"Stripe-Signature": "x"})
    assert malformed.status_code == 400


def test_unknown_fake_checkouts_are_404(client: TestClient) -> None:
    assert client.get("/fake-gateway/checkout/cs_nope").status_code == 404
    assert client.post("/fake-gateway/checkout/cs_nope").status_code == 404

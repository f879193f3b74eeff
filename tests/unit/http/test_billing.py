"""Plans, entitlements and credits through HTTP (API.md "Plans, entitlements, credits,
billing"), on every profile, and the refusal payloads as the API answers them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.entitlements import EntitlementService
from core.billing.errors import FeatureNotInTierError, InsufficientCreditsError, LimitReachedError
from core.billing.seed import seed_catalog
from core.shared.errors import DomainError
from entrypoints.http.schemas.billing import CreditsRead, EntitlementsRead, TierList
from tests.unit.http.support import Browser


def _call(client: TestClient, coroutine: Any) -> Any:
    assert client.portal is not None
    return client.portal.call(lambda: coroutine)


def seeded(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    _call(client, seed_catalog(runtime.get(CatalogService)))


def test_tiers_are_public_and_cheapest_first(client: TestClient, browser: Browser) -> None:
    seeded(client)
    response = browser.get("/api/v1/tiers")
    assert response.status_code == 200
    tiers = TierList.model_validate(response.json()).items
    # The services profile shares its database with the other tests of the session (a
    # contract test may have left a public tier): the seeded ones are in order.
    seeded_codes = ("free", "pro", "enterprise")
    assert [t.code for t in tiers if t.code in seeded_codes] == list(seeded_codes)
    free = next(t for t in tiers if t.code == "free")
    assert free.price == 0 and "conversations" in free.features
    assert free.limits["messages"].limit == 50 and free.limits["messages"].period == "day"
    assert all(
        set(item) >= {"code", "name", "price", "features", "limits"}
        for item in response.json()["items"]
    )


def test_entitlements_are_the_callers_with_usage_and_credits(
    client: TestClient, browser: Browser
) -> None:
    seeded(client)
    browser.signup()
    me = browser.me().json()
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    _call(client, runtime.get(CreditService).grant(me["id"], 42, idempotency_key="welcome"))
    user = _call(client, runtime.get(CreditService).balance(me["id"]))
    assert user == 42
    response = browser.get("/api/v1/me/entitlements")
    assert response.status_code == 200
    body = EntitlementsRead.model_validate(response.json())
    assert body.tier == "free" and body.credits == 42
    assert "conversations" in body.features
    messages = body.limits["messages"]
    assert (messages.limit, messages.used, messages.remaining) == (50, 0, 50)
    assert messages.resets_at > datetime.now(UTC)


def test_credits_list_the_ledger_newest_first_with_cursors(
    client: TestClient, browser: Browser
) -> None:
    browser.signup()
    user_id = browser.me().json()["id"]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    credits = runtime.get(CreditService)
    for n in range(5):
        _call(client, credits.grant(user_id, 10 + n, idempotency_key=f"g{n}", note=f"n{n}"))
    _call(client, credits.spend(user_id, 3, idempotency_key="s"))
    first = browser.get("/api/v1/credits", params={"limit": 4})
    assert first.status_code == 200
    page = CreditsRead.model_validate(first.json())
    assert page.balance == sum(10 + n for n in range(5)) - 3
    assert [e.delta for e in page.items] == [-3, 14, 13, 12]
    assert page.items[0].balance_after == page.balance
    rest = browser.get("/api/v1/credits", params={"limit": 4, "cursor": page.next_cursor})
    assert [e["delta"] for e in rest.json()["items"]] == [11, 10]
    assert rest.json()["next_cursor"] is None
    assert browser.get("/api/v1/credits", params={"limit": 0}).status_code == 422
    assert browser.get("/api/v1/credits", params={"cursor": "garbage!"}).status_code == 422


def test_the_billing_routes_of_a_user_need_a_session(browser: Browser) -> None:
    for path in ("/api/v1/me/entitlements", "/api/v1/credits"):
        assert browser.get(path).status_code == 401


# --- refusals as answers --------------------------------------------------------------


@pytest.fixture
def refusing(client: TestClient) -> TestClient:
    """The app with a route that raises whatever the test puts in `app.state.refusal`."""

    async def refuse(request: Request) -> Response:
        raise request.app.state.refusal

    client.app.router.routes.append(Route("/refuse", refuse))  # type: ignore[attr-defined]
    return client


def _refused(client: TestClient, error: DomainError) -> Any:
    client.app.state.refusal = error  # type: ignore[attr-defined]
    return client.get("/refuse")


def test_insufficient_credits_is_402_with_the_amounts(refusing: TestClient) -> None:
    response = _refused(
        refusing, InsufficientCreditsError(needed=30, balance=4, upgrade_hint="https://x/pricing")
    )
    assert response.status_code == 402
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "insufficient_credits"
    assert (body["limit"], body["remaining"], body["upgrade_url"]) == (30, 4, "https://x/pricing")


def test_a_feature_outside_the_plan_is_403(refusing: TestClient) -> None:
    response = _refused(refusing, FeatureNotInTierError("sso", upgrade_hint="https://x/pricing"))
    assert response.status_code == 403
    assert response.json()["code"] == "feature_not_in_tier"
    assert response.json()["upgrade_url"] == "https://x/pricing"


def test_a_reached_limit_is_429_with_retry_after(refusing: TestClient) -> None:
    resets = datetime.now(UTC).replace(microsecond=0).timestamp() + 3600
    resets_at = datetime.fromtimestamp(resets, UTC).isoformat()
    response = _refused(
        refusing, LimitReachedError("messages", limit=50, remaining=0, resets_at=resets_at)
    )
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "limit_reached"
    assert (body["limit"], body["remaining"], body["resets_at"]) == (50, 0, resets_at)
    assert 3500 <= int(response.headers["retry-after"]) <= 3600


def test_a_limit_refused_by_the_service_answers_429(
    client: TestClient, browser: Browser, refusing: TestClient
) -> None:
    seeded(client)
    browser.signup()
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    user = _call(client, runtime.get(CreditService).balance(browser.me().json()["id"]))
    assert user == 0
    principal_id = browser.me().json()["id"]
    from core.identity.service import AccountService

    member = _call(client, runtime.get(AccountService).get(principal_id))
    entitlements = runtime.get(EntitlementService)
    _call(client, entitlements.consume(member, "messages", 50))
    with pytest.raises(LimitReachedError) as refused:
        _call(client, entitlements.consume(member, "messages"))
    response = _refused(refusing, refused.value)
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    usage = browser.get("/api/v1/me/entitlements").json()["limits"]["messages"]
    assert (usage["used"], usage["remaining"]) == (50, 0)

"""RELIABILITY.md "Limits and faults" through HTTP: general, per-user, per-tier and
per-route limits, trusted proxies, fail-open, and sign-in throttling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from starlette.testclient import TestClient

from core.platform.rate_limit import RateLimitDecision
from entrypoints.bootstrap.container import build_container
from entrypoints.http.app import create_app
from tests.unavailable import UnreachableRateLimiter
from tests.unit.http.conftest import MakeClient
from tests.unit.http.profiles import profile_settings
from tests.unit.http.support import Browser, ResponseChecker, new_credentials

ANONYMOUS_ROUTE = "/api/v1/auth/csrf"


def _limit_headers(response: Any) -> tuple[int, int, int]:
    return (
        int(response.headers["ratelimit-limit"]),
        int(response.headers["ratelimit-remaining"]),
        int(response.headers["ratelimit-reset"]),
    )


def _peer(client: TestClient, address: str) -> TestClient:
    """Another client of the same running app, connecting from `address`. It shares the
    first client's event loop (portal), where the lifespan opened the app's pools."""
    other = TestClient(client.app, client=(address, 4000))
    other.portal = client.portal
    other.event_hooks = client.event_hooks
    return other


def test_anonymous_callers_are_limited_per_address(make_client: MakeClient) -> None:
    client = make_client(rate_limit={"anonymous": 3, "window_seconds": 60})
    seen = [client.get(ANONYMOUS_ROUTE) for _ in range(3)]
    assert [r.status_code for r in seen] == [200, 200, 200]
    assert [_limit_headers(r)[:2] for r in seen] == [(3, 2), (3, 1), (3, 0)]
    assert all(0 < _limit_headers(r)[2] <= 60 for r in seen)

    refused = client.get(ANONYMOUS_ROUTE)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert _limit_headers(refused)[:2] == (3, 0)
    # Probes are never throttled.
    assert client.get("/health").status_code == 200
    assert "ratelimit-limit" not in client.get("/health").headers
    metrics = client.get("/metrics").text
    assert 'portico_rate_limited_total{rule="general"} 1.0' in metrics


def test_another_address_has_its_own_budget(make_client: MakeClient) -> None:
    client = make_client(rate_limit={"anonymous": 1})
    assert client.get(ANONYMOUS_ROUTE).status_code == 200
    assert client.get(ANONYMOUS_ROUTE).status_code == 429
    other = _peer(client, "192.0.2.7")
    assert other.get(ANONYMOUS_ROUTE).status_code == 200


def test_signed_in_users_are_limited_per_user_by_tier(
    make_client: MakeClient,
) -> None:
    # Default tier is "free"; its own limit wins over `authenticated`.
    client = make_client(rate_limit={"anonymous": 50, "authenticated": 50, "tiers": {"free": 3}})
    ada, bob = Browser(client), Browser(client)
    ada.signup()
    bob.signup()
    assert _limit_headers(ada.me())[:2] == (3, 2)
    ada.me()
    ada.me()
    refused = ada.me()
    assert refused.status_code == 429 and refused.headers["retry-after"]
    # Same address, another user: a budget of its own.
    assert bob.me().status_code == 200
    # Anonymous traffic from that address is keyed on the address, not on Ada.
    assert client.get(ANONYMOUS_ROUTE).status_code == 200


def test_a_route_rule_counts_on_top_of_the_general_limit(make_client: MakeClient) -> None:
    client = make_client(rate_limit={"anonymous": 50, "routes": {"POST /api/v1/users": "2/600"}})
    browser = Browser(client)
    assert browser.register(new_credentials()).status_code == 201
    second = browser.register(new_credentials())
    assert second.status_code == 201
    assert _limit_headers(second)[:2] == (2, 0)  # the tightest rule is reported
    third = browser.register(new_credentials())
    assert third.status_code == 429
    assert 1 <= int(third.headers["retry-after"]) <= 600
    assert client.get(ANONYMOUS_ROUTE).status_code == 200  # other routes unaffected
    assert 'rule="POST /api/v1/users"' in client.get("/metrics").text


def test_forwarded_for_is_believed_only_from_trusted_proxies(make_client: MakeClient) -> None:
    client = make_client(rate_limit={"anonymous": 1}, http={"trusted_proxies": ["10.0.0.0/8"]})
    proxy = _peer(client, "10.1.2.3")
    stranger = _peer(client, "198.51.100.9")

    def via(sender: TestClient, forwarded: str) -> int:
        return sender.get(ANONYMOUS_ROUTE, headers={"X-Forwarded-For": forwarded}).status_code

    # Behind the proxy each forwarded client has its own budget...
    assert via(proxy, "203.0.113.1") == 200
    assert via(proxy, "203.0.113.2") == 200
    assert via(proxy, "203.0.113.1") == 429
    # ...and the rightmost untrusted hop counts, so a spoofed leftmost entry gains nothing.
    assert via(proxy, "1.2.3.4, 203.0.113.2") == 429
    # A direct caller cannot pick its own key with the header.
    assert via(stranger, "203.0.113.50") == 200
    assert via(stranger, "203.0.113.51") == 429


def test_invalid_rate_limit_settings_are_refused(make_client: MakeClient) -> None:
    with pytest.raises(ValueError, match="METHOD /path"):
        make_client(rate_limit={"routes": {"/api/v1/users": "1/60"}})
    with pytest.raises(ValueError, match="limit"):
        make_client(rate_limit={"routes": {"POST /api/v1/users": "ten per minute"}})
    with pytest.raises(ValueError, match="network"):
        make_client(http={"trusted_proxies": ["proxy.internal"]})


def test_disabled_limits_send_no_headers(make_client: MakeClient) -> None:
    client = make_client(rate_limit={"enabled": False, "anonymous": 1})
    answers = [client.get(ANONYMOUS_ROUTE) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert "ratelimit-limit" not in answers[-1].headers


# --- sign-in throttling -------------------------------------------------------------------


def test_login_is_throttled_per_account_with_the_same_answer_for_unknown_accounts(
    make_client: MakeClient,
) -> None:
    client = make_client(rate_limit={"login_per_account": 2, "login_per_address": 100})
    browser = Browser(client)
    known = new_credentials()
    assert browser.register(known).status_code == 201  # registering is no sign-in
    answers = {}
    for email in (known.email, "nobody@example.com"):
        first = browser.login(email, "wrong password, long enough")
        second = browser.login(email, "wrong password, long enough")
        assert first.status_code == second.status_code == 401
        answers[email] = browser.login(email, "wrong password, long enough")
    for refused in answers.values():
        assert refused.status_code == 429
        assert refused.json()["code"] == "login_throttled"
        assert int(refused.headers["retry-after"]) >= 1
    known_body, unknown_body = (answers[e].json() for e in (known.email, "nobody@example.com"))
    assert known_body == unknown_body
    # Throttled means throttled: the right password is refused too until the window ends.
    assert browser.login(known.email, known.password).status_code == 429
    # Case and spaces do not make a new account key.
    assert browser.login(known.email.upper(), known.password).status_code == 429


def test_token_sign_in_shares_the_login_throttle(make_client: MakeClient) -> None:
    client = make_client(rate_limit={"login_per_account": 2, "login_per_address": 100})
    browser = Browser(client)
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    body = {"email": credentials.email, "password": "wrong password, long enough"}
    assert client.post("/api/v1/auth/token", json=body).status_code == 401
    assert browser.login(credentials.email, "wrong password, long enough").status_code == 401
    refused = client.post("/api/v1/auth/token", json=body)
    assert refused.status_code == 429 and refused.json()["code"] == "login_throttled"


def test_login_is_throttled_per_address(make_client: MakeClient) -> None:
    client = make_client(rate_limit={"login_per_account": 100, "login_per_address": 3})
    browser = Browser(client)
    for n in range(3):
        assert browser.login(f"user{n}@example.com", "a wrong password here").status_code == 401
    refused = browser.login("user9@example.com", "a wrong password here")
    assert refused.status_code == 429 and refused.json()["code"] == "login_throttled"


# --- the store being down ---------------------------------------------------------------


@pytest.fixture
def down_limiter() -> UnreachableRateLimiter:
    return UnreachableRateLimiter()


@pytest.fixture
def app_with_store_down(
    request: pytest.FixtureRequest, tmp_path: Path, down_limiter: UnreachableRateLimiter
) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = profile_settings("memory", request, tmp_path, **overrides)
        container = build_container(settings)
        container.rate_limiter.override(providers.Object(down_limiter))
        app = create_app(settings, container=container)
        client = TestClient(app)
        client.__enter__()
        client.event_hooks = {"request": [], "response": [ResponseChecker(app)]}
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_general_limits_fail_open_when_configured(
    app_with_store_down: Any, down_limiter: UnreachableRateLimiter
) -> None:
    client = app_with_store_down(rate_limit={"anonymous": 1, "fail_open": True})
    before = down_limiter.calls
    answers = [client.get(ANONYMOUS_ROUTE) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert down_limiter.calls - before == 3  # the store was asked each time
    assert "ratelimit-limit" not in answers[0].headers
    assert "portico_rate_limit_fail_open_total 3.0" in client.get("/metrics").text


def test_general_limits_answer_503_when_not_failing_open(app_with_store_down: Any) -> None:
    client = app_with_store_down(rate_limit={"fail_open": False})
    refused = client.get(ANONYMOUS_ROUTE)
    assert refused.status_code == 503
    assert refused.json()["code"] == "service_unavailable"
    assert refused.headers["retry-after"]


def _throttle_keys(limiter: UnreachableRateLimiter, rule: str) -> list[str]:
    """The keys the login throttle asked the store about (`login:<rule>:...`), as opposed
    to the general limits' (`general:...`, `METHOD /path:...`)."""
    return [key for key in limiter.keys if key.startswith(f"login:{rule}:")]


def test_login_throttle_never_fails_open(
    app_with_store_down: Any, down_limiter: UnreachableRateLimiter
) -> None:
    client = app_with_store_down(
        rate_limit={"fail_open": True, "login_per_account": 2, "login_per_address": 100}
    )
    browser = Browser(client)
    credentials = new_credentials()
    assert browser.register(credentials).status_code == 201
    assert _throttle_keys(down_limiter, "account") == []
    assert browser.login(credentials.email, credentials.password).status_code == 200
    assert browser.login(credentials.email, "a wrong password here").status_code == 401
    refused = browser.login(credentials.email, credentials.password)
    assert refused.status_code == 429 and refused.json()["code"] == "login_throttled"
    # The broken store was consulted on every attempt (the in-process fallback refused
    # because the store failed, not because the throttle never asked it).
    account_keys = _throttle_keys(down_limiter, "account")
    assert len(account_keys) == 3 and len(set(account_keys)) == 1
    assert len(_throttle_keys(down_limiter, "address")) == 3


def test_readiness_reports_the_rate_limit_store(app_with_store_down: Any) -> None:
    client = app_with_store_down(rate_limit={"backend": "redis"}, redis={"url": "redis://x"})
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["rate_limit"] != "ok"


def test_decisions_are_reported_from_the_tightest_rule() -> None:
    from entrypoints.http.middleware.rate_limit import rate_limit_headers

    headers = rate_limit_headers(RateLimitDecision(True, 10, 4, 12.2, 0.0))
    assert headers == {"RateLimit-Limit": "10", "RateLimit-Remaining": "4", "RateLimit-Reset": "13"}

"""`/metrics` behind a token and/or an address allow-list (`PORTICO_METRICS__*`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from entrypoints.http.app import create_app
from tests.unit.http.profiles import profile_settings
from tests.unit.http.support import ResponseChecker

TOKEN = "scrape-token-0123456789abcdef0123456789"
Scraper = Callable[..., TestClient]


@pytest.fixture
def scraper(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scraper]:
    """An app (memory profile) seen from the client address `peer`."""
    with ExitStack() as stack:

        def make(peer: str = "203.0.113.9", **overrides: Any) -> TestClient:
            settings = profile_settings("memory", request, tmp_path, **overrides)
            app = create_app(settings)
            client = stack.enter_context(TestClient(app, client=(peer, 40000)))
            client.event_hooks = {"request": [], "response": [ResponseChecker(app)]}
            return client

        yield make


def _is_metrics(response: Any) -> bool:
    return response.status_code == 200 and "portico_http_requests_total" in response.text


def test_metrics_are_open_when_nothing_is_configured(scraper: Scraper) -> None:
    assert _is_metrics(scraper().get("/metrics"))


def test_a_token_is_required_when_configured(scraper: Scraper) -> None:
    client = scraper(metrics={"token": TOKEN})
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["code"] == "metrics_unauthorized"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "portico_http" not in missing.text
    for wrong in (TOKEN[:-1], TOKEN + "x", "", "Basic " + TOKEN):
        header = wrong if wrong.startswith("Basic") else f"Bearer {wrong}"
        assert client.get("/metrics", headers={"Authorization": header}).status_code == 401
    assert _is_metrics(client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}))
    # The token is the scraper's, not a user's: the API does not take it as a sign-in.
    assert (
        client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 401
    )


def test_only_allowed_networks_may_scrape(scraper: Scraper) -> None:
    networks = {"allowed_networks": ["10.0.0.0/8", "2001:db8::/32"]}
    assert _is_metrics(scraper("10.20.30.40", metrics=networks).get("/metrics"))
    assert _is_metrics(scraper("2001:db8::5", metrics=networks).get("/metrics"))
    assert _is_metrics(scraper("::ffff:10.0.0.7", metrics=networks).get("/metrics"))
    refused = scraper("192.0.2.1", metrics=networks).get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["code"] == "metrics_forbidden"


def test_either_the_network_or_the_token_admits(scraper: Scraper) -> None:
    both = {"token": TOKEN, "allowed_networks": ["10.0.0.0/8"]}
    assert _is_metrics(scraper("10.1.1.1", metrics=both).get("/metrics"))
    outside = scraper("192.0.2.1", metrics=both)
    assert outside.get("/metrics").status_code == 401
    assert _is_metrics(outside.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}))


def test_the_client_address_respects_trusted_proxies(scraper: Scraper) -> None:
    metrics = {"allowed_networks": ["10.0.0.0/8"]}
    inside = {"X-Forwarded-For": "10.9.9.9"}
    # Behind a trusted proxy, the forwarded address is the client's.
    behind_proxy = scraper("192.0.2.50", metrics=metrics, http={"trusted_proxies": ["192.0.2.50"]})
    assert _is_metrics(behind_proxy.get("/metrics", headers=inside))
    assert (
        behind_proxy.get("/metrics", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 403
    )
    # From anyone else, X-Forwarded-For is just a header a client wrote.
    direct = scraper("192.0.2.50", metrics=metrics)
    assert direct.get("/metrics", headers=inside).status_code == 403


def test_metrics_settings_refuse_what_is_not_a_network(scraper: Scraper) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not an IP address or network"):
        scraper(metrics={"allowed_networks": ["intranet"]})
    # An empty variable is no token (not a token everyone knows).
    assert scraper(metrics={"token": ""}).app.state.metrics_access.open  # type: ignore[attr-defined]


def test_a_token_outside_the_bearer_alphabet_still_works(scraper: Scraper) -> None:
    token = "pass phrase with $ymbols! 0123456789abcdef"
    client = scraper(metrics={"token": token})
    assert _is_metrics(client.get("/metrics", headers={"Authorization": f"Bearer {token}"}))
    assert client.get("/metrics", headers={"Authorization": "Bearer pass"}).status_code == 401

"""`/metrics` after a scripted session on every profile: register, sign in, buy a credit
pack through the fake gateway (its webhook included), send a message to the fake model,
run the jobs; the scrape (parsed as Prometheus parses it) has every family with the
labels and values the session made."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from starlette.testclient import TestClient

from core.billing.catalog import CatalogService
from core.billing.seed import seed_catalog
from core.conversations.prices import PriceService
from core.notifications.ports import EmailSender
from core.notifications.service import SEND_EMAIL_JOB
from tests.unit.http.support import Browser

PACK_CREDITS = 1_000  # the seeded `small` pack
FAMILIES = {
    "portico_http_requests": "counter",
    "portico_http_request_duration_seconds": "histogram",
    "portico_rate_limit_decisions": "counter",
    "portico_cache_requests": "counter",
    "portico_jobs": "counter",
    "portico_job_duration_seconds": "histogram",
    "portico_llm_tokens": "counter",
    "portico_llm_cost_micros": "counter",
    "portico_llm_request_duration_seconds": "histogram",
    "portico_credits": "counter",
    "portico_webhook_events": "counter",
    "portico_dependency_up": "gauge",
}
EXEMPT = {"/health", "/ready", "/metrics"}


class Scrape:
    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def samples(self, sample: str, /) -> list[Sample]:
        family = sample.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
        return [s for s in self.families[family].samples if s.name == sample]

    def value(self, sample: str, /, **labels: str) -> float:
        found = [s.value for s in self.samples(sample) if labels.items() <= s.labels.items()]
        assert len(found) == 1, (sample, labels, found)
        return found[0]

    def total(self, sample: str, samples: Iterable[Sample] | None = None) -> float:
        return sum(s.value for s in (samples if samples is not None else self.samples(sample)))


def _session(client: TestClient) -> tuple[Browser, dict[str, int], dict[str, str]]:
    """The scripted session: what the message's usage said and what /ready answered."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert client.portal is not None
    client.portal.call(lambda: seed_catalog(runtime.get(CatalogService)))
    client.portal.call(lambda: runtime.get(PriceService).ensure_default_prices())
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.text

    browser = Browser(client)
    browser.signup()  # register, then sign in
    assert browser.me().status_code == 200

    bought = browser.post("/api/v1/billing/checkout", json={"credit_pack": "small"})
    assert bought.status_code == 200, bought.text
    paid = Browser(client).post(urlsplit(bought.json()["url"]).path, follow_redirects=False)
    assert paid.status_code == 303  # the fake gateway delivered its events to the webhook
    assert browser.get("/api/v1/credits").json()["balance"] == PACK_CREDITS

    conversation = browser.post("/api/v1/conversations", json={"title": "Metrics"})
    assert conversation.status_code == 201, conversation.text
    sent = browser.post(
        f"/api/v1/conversations/{conversation.json()['id']}/messages",
        json={"content": "Hello", "client_message_id": "m-1"},
    )
    assert sent.status_code == 201, sent.text
    client.portal.call(runtime.drain_jobs)
    return browser, sent.json()["usage"], ready.json()["checks"]


def test_a_scrape_after_a_session_has_every_family_with_its_values(client: TestClient) -> None:
    browser, usage, checks = _session(client)
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    scrape = Scrape(answer.text)
    assert {name: scrape.families[name].type for name in FAMILIES} == FAMILIES

    # HTTP: route templates, never raw paths.
    messages = "/api/v1/conversations/{conversation_id:int}/messages"
    requests = "portico_http_requests_total"
    assert scrape.value(requests, method="POST", route=messages, status="201") == 1
    assert scrape.value(requests, method="POST", route="/api/v1/users", status="201") == 1
    duration = "portico_http_request_duration_seconds_count"
    assert scrape.value(duration, method="POST", route=messages, status="201") == 1

    # Rate limits: one general decision per request outside the probes; the
    # registration's own rule once; one sign-in, checked per address and per account.
    decisions = "portico_rate_limit_decisions_total"
    limited = [s for s in scrape.samples(requests) if s.labels["route"] not in EXEMPT]
    assert scrape.value(decisions, rule="general", decision="allowed") == scrape.total(
        requests, limited
    )
    assert scrape.value(decisions, rule="POST /api/v1/users", decision="allowed") == 1
    assert scrape.value(decisions, rule="login_account", decision="allowed") == 1
    assert scrape.value(decisions, rule="login_address", decision="allowed") == 1
    assert not [s for s in scrape.samples(decisions) if s.labels["decision"] == "refused"]

    # Caches: the signed-in requests read the user; entitlements were read for the send.
    caches = "portico_cache_requests_total"
    assert scrape.value(caches, cache="users", result="hit") >= 1
    entitlements = [s for s in scrape.samples(caches) if s.labels["cache"] == "entitlements"]
    assert scrape.total(caches, entitlements) >= 1

    # The model call: exactly the usage the message reported.
    model = {"model": "portico-fake"}
    tokens = "portico_llm_tokens_total"
    assert scrape.value(tokens, **model, direction="input") == usage["input_tokens"]
    assert scrape.value(tokens, **model, direction="output") == usage["output_tokens"]
    assert scrape.value("portico_llm_cost_micros_total", **model) == usage["cost"] > 0
    calls = "portico_llm_request_duration_seconds_count"
    assert scrape.value(calls, **model, outcome="completed") == 1

    # Credits: the pack granted, the message's charge spent, and the balance agrees.
    credits = "portico_credits_total"
    assert scrape.value(credits, kind="grant") == PACK_CREDITS
    assert scrape.value(credits, kind="spend") == usage["credits_charged"] >= 1
    assert scrape.value(credits, kind="refund") == scrape.value(credits, kind="reversal") == 0
    balance = browser.get("/api/v1/credits").json()["balance"]
    assert balance == PACK_CREDITS - usage["credits_charged"]

    # The purchase's webhook: its checkout applied once.
    events = "portico_webhook_events_total"
    assert scrape.value(events, type="checkout.session.completed", outcome="applied") == 1

    # Jobs: one mail job per mail the user got (welcome, receipt); each run timed.
    jobs = "portico_jobs_total"
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    mails = runtime.get(EmailSender).sent_to(browser.credentials.email)
    assert len(mails) >= 2
    assert scrape.value(jobs, name=SEND_EMAIL_JOB, outcome="done") == len(mails)
    for sample in scrape.samples(jobs):
        timed = scrape.value("portico_job_duration_seconds_count", **sample.labels)
        assert timed == sample.value
    assert {s.labels["outcome"] for s in scrape.samples(jobs)} == {"done"}

    # Dependencies: as the readiness probe found them.
    assert checks and all(result == "ok" for result in checks.values())
    up = {s.labels["dependency"]: s.value for s in scrape.samples("portico_dependency_up")}
    assert up == dict.fromkeys(checks, 1.0)

"""Conversations through HTTP on every profile (API.md "Conversations and AI usage"):
create and list, a message answered as JSON and as server-sent events, another user's
conversation is 404, no credits is 402, usage per model."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.seed import seed_catalog
from core.conversations.prices import PriceService
from tests.unit.http.support import Browser

CONVERSATIONS = "/api/v1/conversations"


def _ready(client: TestClient, browser: Browser, credits: int = 10_000) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert client.portal is not None
    client.portal.call(lambda: seed_catalog(runtime.get(CatalogService)))
    client.portal.call(lambda: runtime.get(PriceService).ensure_default_prices())
    browser.signup()
    user_id = int(browser.me().json()["id"])
    if credits:
        client.portal.call(
            lambda: runtime.get(CreditService).grant(user_id, credits, idempotency_key="t")
        )
    created = browser.post(CONVERSATIONS, json={"title": "First"})
    assert created.status_code == 201, created.text
    assert created.json()["model"] == "portico-fake"
    return int(created.json()["id"])


def _events(text: str) -> list[tuple[str, Any]]:
    found = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        fields = dict(line.split(": ", 1) for line in lines if ": " in line)
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


def test_a_message_is_answered_charged_and_listed(client: TestClient, browser: Browser) -> None:
    conversation = _ready(client, browser)
    sent = browser.post(
        f"{CONVERSATIONS}/{conversation}/messages",
        json={"content": "Hello", "client_message_id": "c-1"},
    )
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert body["assistant_message"]["state"] == "completed"
    assert body["assistant_message"]["content"].endswith("You said: Hello")
    usage = body["usage"]
    assert usage["model"] == "portico-fake" and usage["credits_charged"] >= 1
    assert browser.get("/api/v1/credits").json()["balance"] == 10_000 - usage["credits_charged"]

    again = browser.post(
        f"{CONVERSATIONS}/{conversation}/messages",
        json={"content": "Hello", "client_message_id": "c-1"},
    )
    assert again.status_code == 201 and again.json() == body  # the first result, charged once
    assert browser.get("/api/v1/credits").json()["balance"] == 10_000 - usage["credits_charged"]

    listed = browser.get(f"{CONVERSATIONS}/{conversation}/messages").json()["items"]
    assert [m["role"] for m in listed] == ["user", "assistant"]
    totals = browser.get("/api/v1/usage").json()["items"]
    assert [(t["group"], t["messages"]) for t in totals] == [("portico-fake", 1)]
    assert browser.get(CONVERSATIONS).json()["items"][0]["id"] == conversation


def test_a_streamed_reply_is_deltas_then_done(client: TestClient, browser: Browser) -> None:
    conversation = _ready(client, browser)
    with browser.client.stream(
        "POST",
        f"{CONVERSATIONS}/{conversation}/messages",
        json={"content": "Stream please"},
        headers={
            "Accept": "text/event-stream",
            "X-CSRF-Token": browser.csrf or "",
            "Sec-Fetch-Site": "same-origin",
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in response.headers  # a stream: real clients read on
        events = _events("".join(response.iter_text()))
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"delta"}
    text = "".join(data["text"] for name, data in events if name == "delta")
    done = events[-1][1]
    assert done["assistant_message"]["content"] == text
    assert done["usage"]["output_tokens"] == len(names) - 1


def test_another_users_conversation_is_404_and_no_credits_is_402(
    client: TestClient, browser: Browser, new_browser: Any
) -> None:
    conversation = _ready(client, browser, credits=0)
    poor = browser.post(f"{CONVERSATIONS}/{conversation}/messages", json={"content": "hi"})
    assert poor.status_code == 402 and poor.json()["code"] == "insufficient_credits"
    assert browser.get(f"{CONVERSATIONS}/{conversation}/messages").json()["items"] == []

    stranger = new_browser()
    stranger.signup()
    for response in (
        stranger.get(f"{CONVERSATIONS}/{conversation}"),
        stranger.post(f"{CONVERSATIONS}/{conversation}/messages", json={"content": "hi"}),
        stranger.delete(f"{CONVERSATIONS}/{conversation}"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "conversation_not_found"
    assert browser.delete(f"{CONVERSATIONS}/{conversation}").status_code == 204
    assert browser.get(f"{CONVERSATIONS}/{conversation}").status_code == 404
    assert browser.get(CONVERSATIONS).json()["items"] == []


def test_usage_input_is_checked(client: TestClient, browser: Browser) -> None:
    _ready(client, browser)
    for query in (
        "until=0.5",
        "group_by=week",
        "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
    ):
        assert browser.get(f"/api/v1/usage?{query}").status_code == 422, query
    by_day = browser.get("/api/v1/usage?group_by=day")
    assert by_day.status_code == 200 and by_day.json() == {"items": []}

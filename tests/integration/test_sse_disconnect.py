"""A client that goes away mid-stream, over a real socket (uvicorn closes the
connection, Starlette cancels the response): the reply is still read from the model to
its end, saved whole, charged once by the usage reported, and the ledger is exact."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.model import ReservationStatus
from core.billing.ports import BillingUnitOfWorkFactory
from core.billing.seed import seed_catalog
from core.conversations.prices import PriceService
from core.shared.clock import Clock
from tests.live_app import LiveApp, live_app, settings_for

pytestmark = pytest.mark.integration

GRANT = 10_000
PER_TOKEN = 0.1  # slow enough that the reply is still being made when the client leaves
CONVERSATIONS = "/api/v1/conversations"


def _prepared(app: LiveApp) -> tuple[Any, int, int]:
    runtime = app.app.state.runtime
    app.call(lambda: seed_catalog(runtime.get(CatalogService)))
    app.call(lambda: runtime.get(PriceService).ensure_default_prices())
    browser = app.browser()
    browser.signup()
    user_id = int(browser.me().json()["id"])
    app.call(lambda: runtime.get(CreditService).grant(user_id, GRANT, idempotency_key="t"))
    created = browser.post(CONVERSATIONS, json={"title": "Leaving early"})
    assert created.status_code == 201, created.text
    return browser, user_id, int(created.json()["id"])


def _deltas_then_leave(app: LiveApp, browser: Any, conversation: int, count: int) -> str:
    """Read `count` delta events, then close the connection; the text read."""
    # A client of its own: LiveApp's clients check each answer, reading its body whole.
    name = app.settings.session_cookie_name
    cookie = next(c.value for c in browser.jar if c.name == name)
    client = httpx.Client(base_url=app.base_url, cookies={name: cookie}, timeout=5.0)
    read: list[str] = []
    with client.stream(
        "POST",
        f"{CONVERSATIONS}/{conversation}/messages",
        json={"content": "Tell me everything", "client_message_id": "leave-1"},
        headers={
            "Accept": "text/event-stream",
            "X-CSRF-Token": browser.csrf or "",
            "Sec-Fetch-Site": "same-origin",
        },
    ) as response:
        assert response.status_code == 200
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "delta":
                read.append(json.loads(line.removeprefix("data: "))["text"])
                if len(read) == count:
                    break
    client.close()  # the socket goes: the server sees the client gone
    return "".join(read)


def test_a_client_gone_after_the_third_delta_finds_the_reply_whole_and_charged_once(
    tmp_path: Path,
) -> None:
    settings = settings_for(
        tmp_path, llm={"fake_latency_per_token_seconds": PER_TOKEN, "max_output_tokens": 40}
    )
    with live_app(settings) as app:
        browser, user_id, conversation = _prepared(app)
        started = time.monotonic()
        seen = _deltas_then_leave(app, browser, conversation, 3)
        messages = f"{CONVERSATIONS}/{conversation}/messages"
        reply = browser.get(messages).json()["items"][-1]
        assert reply["role"] == "assistant" and reply["state"] == "reserved"  # still coming
        while reply["state"] == "reserved" and time.monotonic() - started < 10:
            time.sleep(0.05)
            reply = browser.get(messages).json()["items"][-1]

        assert reply["state"] == "completed", reply
        assert reply["content"].startswith(seen) and len(reply["content"]) > len(seen)
        assert reply["content"].endswith("You said: Tell me everything")
        assert reply["output_tokens"] > 3
        runtime = app.app.state.runtime
        price = app.call(lambda: runtime.get(PriceService).current("portico-fake"))
        cost = price.cost(reply["input_tokens"], reply["output_tokens"])
        assert reply["credits_charged"] == -(-cost // settings.llm.micros_per_credit) >= 1

        balance = browser.get("/api/v1/credits").json()["balance"]
        assert balance == GRANT - reply["credits_charged"]  # charged once

        async def ledger() -> tuple[int, list[ReservationStatus]]:
            async with runtime.get(BillingUnitOfWorkFactory)(read_only=True) as tx:
                total = await tx.credits.total(user_id)
                kept = await tx.reservations.expired(
                    runtime.get(Clock).now().replace(year=2100), 100
                )
            return total, [r.status for r in kept if r.user_id == user_id]

        total, held = app.call(ledger)
        assert total == balance and held == []  # nothing left reserved
        again = browser.post(
            messages, json={"content": "Tell me everything", "client_message_id": "leave-1"}
        )
        assert again.status_code == 201 and again.json()["assistant_message"]["id"] == reply["id"]
        assert browser.get("/api/v1/credits").json()["balance"] == balance

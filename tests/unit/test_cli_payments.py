"""`portico stripe replay|reconcile` and `portico catalog price` on an embedded (SQLite
file) database, each command a runtime of its own as from a shell."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.seed import seed_catalog
from core.conversations.prices import PriceService
from core.identity.service import AccountService
from core.payments.checkout import CheckoutService
from core.payments.events import PaymentEventService
from core.payments.ports import PaymentGateway, PaymentsUnitOfWorkFactory
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings
from entrypoints.cli import main
from tests.unit.test_cli_billing import embedded  # noqa: F401 (the fixture, by name)

pytestmark = pytest.mark.usefixtures("embedded")


async def _with_runtime(body: Any) -> Any:
    runtime = await start_runtime(Settings(), run_jobs=False)
    try:
        return await body(runtime)
    finally:
        await runtime.aclose()


def _bought_pack() -> tuple[int, str]:
    """In one process: a user buys the small pack through the fake gateway and the
    events are received; the user's id and the completed checkout's event id."""

    async def buy(runtime: Any) -> tuple[int, str]:
        await seed_catalog(runtime.get(CatalogService))
        user = await runtime.get(AccountService).register(
            "ada@example.com", "ada", "correct horse battery"
        )
        checkout = await runtime.get(CheckoutService).start(
            user, site_url="http://cli", credit_pack="small"
        )
        deliveries = runtime.get(PaymentGateway).complete_checkout(checkout.gateway_session_id)
        events = runtime.get(PaymentEventService)
        for delivery in deliveries:
            await events.receive(delivery.payload, delivery.signature)
        return user.id, json.loads(deliveries[-1].payload)["id"]

    result: tuple[int, str] = asyncio.run(_with_runtime(buy))
    return result


def _balance(user_id: int) -> int:
    async def read(runtime: Any) -> int:
        return int(await runtime.get(CreditService).balance(user_id))

    return int(asyncio.run(_with_runtime(read)))


def test_replay_applies_a_stored_event_again_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    user_id, event_id = _bought_pack()
    assert _balance(user_id) == 1_000
    assert main(["stripe", "replay", event_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"event_id": event_id, "outcome": "applied"}
    assert main(["stripe", "replay", event_id]) == 0
    assert _balance(user_id) == 1_000

    async def attempts(runtime: Any) -> int:
        async with runtime.get(PaymentsUnitOfWorkFactory)(read_only=True) as tx:
            stored = await tx.webhook_events.get(event_id)
        return int(stored.attempts)

    assert asyncio.run(_with_runtime(attempts)) == 3


def test_replay_of_an_event_nobody_has_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["stripe", "replay", "evt_nobody"]) == 1
    assert "No such gateway event" in capsys.readouterr().err


def test_reconcile_reports_what_it_found_and_remembers_where_it_ended(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["stripe", "reconcile", "--since", "2026-01-01T00:00:00Z", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["since"] == "2026-01-01T00:00:00+00:00"
    assert (first["found"], first["applied"]) == (0, 0)
    assert main(["stripe", "reconcile", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["since"] < first["until"]  # from the last run's end, less the overlap
    with pytest.raises(SystemExit) as refused:
        main(["stripe", "reconcile", "--since", "yesterday"])
    assert refused.value.code == 2


def test_catalog_price_names_the_gateway_price(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["seed"]) == 0
    assert main(["catalog", "price", "--tier", "pro", "price_1ProLive"]) == 0
    assert main(["catalog", "price", "--product", "small", "price_1PackLive"]) == 0
    capsys.readouterr()
    assert main(["catalog", "price", "--tier", "nope", "price_x"]) == 1
    assert "portico:" in capsys.readouterr().err

    async def prices(runtime: Any) -> tuple[str | None, str | None]:
        catalog = runtime.get(CatalogService)
        tier = await catalog.tier("pro")
        product = await catalog.product("small")
        return tier.gateway_price_id, product.gateway_price_id

    assert asyncio.run(_with_runtime(prices)) == ("price_1ProLive", "price_1PackLive")


def test_catalog_model_price_prices_a_model_from_a_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["seed"]) == 0
    args = ["catalog", "model-price", "gpt-4o-mini", "--input", "150000", "--output", "600000"]
    assert main([*args, "--from", "2026-01-01T00:00:00Z"]) == 0
    assert "gpt-4o-mini: 150000 / 600000" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["catalog", "model-price", "gpt-4o-mini", "--input", "-1", "--output", "1"])

    async def current(runtime: Any) -> tuple[int, int]:
        price = await runtime.get(PriceService).current("gpt-4o-mini")
        return price.input_per_million, price.output_per_million

    assert asyncio.run(_with_runtime(current)) == (150_000, 600_000)

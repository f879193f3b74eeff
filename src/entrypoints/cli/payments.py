"""`portico stripe ...` and `portico catalog ...`: the payment and catalog commands.

`stripe replay EVENT_ID` applies a stored event again (or fetches one never received);
`stripe reconcile [--since T]` lists the gateway's events and applies the ones never
seen; `catalog price` names the gateway's price for a tier or a credit pack (audited);
`catalog model-price` prices a model per million tokens from a time on.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from core.shared.clock import Clock
from entrypoints.bootstrap.settings import Settings
from entrypoints.cli.common import run_with_runtime


def _stripe(args: argparse.Namespace, settings: Settings) -> int:
    from core.payments.events import PaymentEventService

    async def replay(runtime: Any) -> int:
        receipt = await runtime.get(PaymentEventService).replay(args.event_id)
        result = {"event_id": receipt.event_id, "outcome": receipt.outcome.value}
        if args.json:
            print(json.dumps(result))
        else:
            print(f"event {receipt.event_id}: {receipt.outcome.value}")
        return 0 if receipt.outcome.value != "failed" else 1

    async def reconcile(runtime: Any) -> int:
        run = await runtime.get(PaymentEventService).reconcile(args.since)
        result = {
            "since": run.since.isoformat(),
            "until": run.until.isoformat(),
            "found": run.found,
            "applied": run.applied,
        }
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"{run.found} events from {result['since']} to {result['until']}; "
                f"{run.applied} applied that had never arrived"
            )
        return 0

    return run_with_runtime(settings, replay if args.action == "replay" else reconcile)


def _catalog(args: argparse.Namespace, settings: Settings) -> int:
    from core.billing.catalog import CatalogService
    from core.conversations.model import ModelPrice
    from core.conversations.prices import PriceService

    async def model_price(runtime: Any) -> int:
        effective = args.effective_from or runtime.get(Clock).now()
        saved = await runtime.get(PriceService).set_price(
            ModelPrice(args.model, args.input, args.output, effective_from=effective)
        )
        print(
            f"{saved.model}: {saved.input_per_million} / {saved.output_per_million} micro-units "
            f"per million input / output tokens from {saved.effective_from.isoformat()}"
        )
        return 0

    if args.action == "model-price":
        return run_with_runtime(settings, model_price)

    async def price(runtime: Any) -> int:
        catalog = runtime.get(CatalogService)
        if args.tier is not None:
            tier = await catalog.tier(args.tier)
            await catalog.update_tier(tier.copy(gateway_price_id=args.price_id))
            print(f"tier {args.tier} is sold as {args.price_id}")
        else:
            product = await catalog.product(args.product)
            await catalog.update_product(product.copy(gateway_price_id=args.price_id))
            print(f"product {args.product} is sold as {args.price_id}")
        return 0

    return run_with_runtime(settings, price)


def _micros(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a price is 0 or more")
    return value


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def add_payment_commands(commands: Any) -> None:
    """The `stripe` and `catalog` subcommands, on the `portico` parser's subparsers."""
    stripe = commands.add_parser("stripe", help="payment events: replay, reconcile")
    actions = stripe.add_subparsers(dest="action", required=True)
    replay = actions.add_parser("replay", help="apply a stored (or fetched) event again")
    replay.add_argument("event_id")
    replay.add_argument("--json", action="store_true", help="print the result as JSON")
    reconcile = actions.add_parser(
        "reconcile", help="apply the gateway's events that never arrived"
    )
    reconcile.add_argument(
        "--since",
        type=_moment,
        default=None,
        help="ISO 8601 time (default: where the last reconciliation ended)",
    )
    reconcile.add_argument("--json", action="store_true", help="print the result as JSON")
    stripe.set_defaults(handler=_stripe)

    catalog = commands.add_parser("catalog", help="the catalog: gateway prices")
    catalog_actions = catalog.add_subparsers(dest="action", required=True)
    price = catalog_actions.add_parser(
        "price", help="sell a tier or a credit pack as this gateway price (audited)"
    )
    which = price.add_mutually_exclusive_group(required=True)
    which.add_argument("--tier", help="a tier's code")
    which.add_argument("--product", help="a product's code")
    price.add_argument("price_id", help="the gateway's price id, e.g. price_1Pq...")
    model_price = catalog_actions.add_parser(
        "model-price", help="price a model per million tokens (micro-units, e.g. 150000 = $0.15)"
    )
    model_price.add_argument("model", help="as the provider names it, e.g. gpt-4o-mini")
    model_price.add_argument("--input", type=_micros, required=True, help="per million input")
    model_price.add_argument("--output", type=_micros, required=True, help="per million output")
    model_price.add_argument(
        "--from", dest="effective_from", type=_moment, default=None, help="ISO 8601 (default: now)"
    )
    catalog.set_defaults(handler=_catalog)

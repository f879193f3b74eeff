"""`portico db upgrade|downgrade|current` and `portico seed`."""

from __future__ import annotations

import argparse
from typing import Any

from entrypoints.bootstrap.settings import Settings
from entrypoints.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_json_flag,
    guarded,
    print_json,
    run_with_runtime,
)


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.bootstrap import migrations

    def run() -> int:
        if args.action == "upgrade":
            migrations.upgrade(settings, args.revision or "head")
            print(f"upgraded to {args.revision or 'head'}")
            return EXIT_OK
        if args.action == "downgrade":
            migrations.downgrade(settings, args.revision)
            print(f"downgraded to {args.revision}")
            return EXIT_OK
        state = migrations.state(settings)
        if args.json:
            print_json(
                {"current": state.current, "heads": state.heads, "up_to_date": state.up_to_date}
            )
        else:
            current = ", ".join(state.current) or "none (never migrated)"
            verdict = "up to date" if state.up_to_date else f"head is {', '.join(state.heads)}"
            print(f"current revision: {current} ({verdict})")
        # A script can check "is this database migrated?" from the exit code alone.
        return EXIT_OK if state.up_to_date else EXIT_FAILED

    return guarded(run)


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    """`portico seed`: the default tiers, credit packs and model prices, where missing
    (idempotent)."""
    from core.billing.catalog import CatalogService
    from core.billing.seed import seed_catalog
    from core.conversations.prices import DEFAULT_PRICES, PriceService

    async def seed(runtime: Any) -> int:
        report = await seed_catalog(runtime.get(CatalogService))
        priced = await runtime.get(PriceService).ensure_default_prices()
        created = list(report.created)
        kept = list(report.kept)
        for price in DEFAULT_PRICES:
            (created if price.model in priced else kept).append(f"price:{price.model}")
        if args.json:
            print_json({"created": created, "kept": kept})
            return EXIT_OK
        for label in created:
            print(f"created {label}")
        for label in kept:
            print(f"kept {label} (exists)")
        return EXIT_OK

    return run_with_runtime(settings, seed)


def add_database_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="database migrations")
    actions = db.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate up (to head by default)")
    upgrade.add_argument("revision", nargs="?", help="target revision (default: head)")
    # No default: dropping every table takes asking for `base` by name.
    downgrade = actions.add_parser("downgrade", help="migrate down to REVISION")
    downgrade.add_argument(
        "revision", help="target revision: an id, -1 for one step back, base for none"
    )
    current = actions.add_parser(
        "current", help="the database's revision (exit 1 when it is not the head)"
    )
    add_json_flag(current)
    db.set_defaults(handler=_db)

    seed = commands.add_parser(
        "seed", help="create the default tiers, credit packs and model prices (idempotent)"
    )
    add_json_flag(seed)
    seed.set_defaults(handler=_seed)

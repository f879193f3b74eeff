"""`portico credits grant` and `portico tier set`: support staff's billing changes."""

from __future__ import annotations

import argparse
from typing import Any

from entrypoints.bootstrap.settings import Settings
from entrypoints.cli.common import (
    EXIT_OK,
    add_json_flag,
    positive_int,
    print_json,
    run_with_runtime,
)


def _credits(args: argparse.Namespace, settings: Settings) -> int:
    """`portico credits grant --email E --amount N --reason TEXT`: one ledger entry and
    one audit record (support staff)."""
    import uuid

    from core.billing.credits import CreditService
    from core.identity.service import AccountService

    async def grant(runtime: Any) -> int:
        user = await runtime.get(AccountService).get_by_email(args.email)
        assert user.id is not None
        entry = await runtime.get(CreditService).grant(
            user.id,
            args.amount,
            idempotency_key=args.idempotency_key or f"cli:{uuid.uuid4().hex}",
            source="cli",
            note=args.reason,
        )
        if args.json:
            print_json(
                {
                    "user_id": user.id,
                    "granted": entry.delta,
                    "balance": entry.balance_after,
                    "entry_id": entry.id,
                }
            )
        else:
            print(f"granted {entry.delta} credits to {args.email}: balance {entry.balance_after}")
        return EXIT_OK

    return run_with_runtime(settings, grant)


def _tier(args: argparse.Namespace, settings: Settings) -> int:
    """`portico tier set --email E --code C --reason TEXT`: move a user to a tier (audited);
    every process sharing the configured cache forgets the user's entitlements."""
    from core.billing.plans import PlanService
    from core.identity.service import AccountService

    async def set_tier(runtime: Any) -> int:
        user = await runtime.get(AccountService).get_by_email(args.email)
        assert user.id is not None
        await runtime.get(PlanService).change_tier(user.id, args.code, reason=args.reason)
        if args.json:
            print_json({"user_id": user.id, "tier": args.code})
        else:
            print(f"{args.email} is now on tier {args.code}")
        return EXIT_OK

    return run_with_runtime(settings, set_tier)


def add_billing_commands(commands: Any) -> None:
    credits = commands.add_parser("credits", help="credits: grant")
    credit_actions = credits.add_subparsers(dest="action", required=True)
    grant = credit_actions.add_parser("grant", help="give a user credits (audited)")
    grant.add_argument("--email", required=True)
    grant.add_argument("--amount", type=positive_int, required=True)
    grant.add_argument("--reason", required=True, help="why (kept in the ledger entry)")
    grant.add_argument(
        "--idempotency-key", help="the same key again grants nothing more (default: new)"
    )
    add_json_flag(grant)
    credits.set_defaults(handler=_credits)

    tier = commands.add_parser("tier", help="tiers: move a user")
    tier_actions = tier.add_subparsers(dest="action", required=True)
    set_tier = tier_actions.add_parser("set", help="move a user to a tier (audited)")
    set_tier.add_argument("--email", required=True)
    set_tier.add_argument("--code", required=True, help="the tier's code, e.g. pro")
    set_tier.add_argument("--reason", required=True, help="why (kept in the audit record)")
    add_json_flag(set_tier)
    tier.set_defaults(handler=_tier)

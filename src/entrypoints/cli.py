"""The `portico` command: serve, migrate, and (later) operate.

Each subcommand builds what it needs from the same settings as the HTTP app.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from entrypoints.bootstrap.settings import Settings
from entrypoints.cli_payments import add_payment_commands


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.http.server import serve

    serve(settings, host=args.host, port=args.port)
    return 0


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.bootstrap.migrations import downgrade, upgrade

    if args.action == "upgrade":
        upgrade(settings, args.revision or "head")
    else:
        downgrade(settings, args.revision or "base")
    return 0


def _jobs(args: argparse.Namespace, settings: Settings) -> int:
    """`portico jobs dead` lists the dead letters; `portico jobs retry ID` re-queues one."""
    import asyncio

    from core.platform.job_admin import JobAdminService
    from core.shared.errors import DomainError
    from entrypoints.bootstrap.runtime import start_runtime

    async def run() -> int:
        # No job loops here: the running processes (or workers) pick up a retried job.
        runtime = await start_runtime(settings, run_jobs=False)
        try:
            admin = runtime.get(JobAdminService)
            if args.action == "retry":
                await admin.retry_dead(args.job_id)
                print(f"job {args.job_id} is pending again")
                return 0
            dead = await admin.list_dead(limit=args.limit, before_id=args.before)
            print("id\tname\tattempts\tfailed_at\tidempotency_key\tlast_error")
            for job in dead:
                error = " ".join(job.last_error.split())[:200]
                failed = job.failed_at.isoformat(timespec="seconds")
                key = job.idempotency_key
                print(f"{job.id}\t{job.name}\t{job.attempts}\t{failed}\t{key}\t{error}")
            return 0
        except DomainError as exc:
            print(f"portico: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            await runtime.aclose()

    return asyncio.run(run())


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    """`portico seed`: the default tiers, credit packs and model prices, where missing
    (idempotent)."""
    import asyncio

    from core.billing.catalog import CatalogService
    from core.billing.seed import seed_catalog
    from core.conversations.prices import DEFAULT_PRICES, PriceService
    from entrypoints.bootstrap.runtime import start_runtime

    async def run() -> int:
        runtime = await start_runtime(settings, run_jobs=False)
        try:
            report = await seed_catalog(runtime.get(CatalogService))
            priced = await runtime.get(PriceService).ensure_default_prices()
        finally:
            await runtime.aclose()
        for label in report.created:
            print(f"created {label}")
        for price in DEFAULT_PRICES:
            state = "created" if price.model in priced else "kept"
            print(f"{state} price:{price.model}" + ("" if state == "created" else " (exists)"))
        for label in report.kept:
            print(f"kept {label} (exists)")
        return 0

    return asyncio.run(run())


def _credits(args: argparse.Namespace, settings: Settings) -> int:
    """`portico credits grant --email E --amount N --reason TEXT`: one ledger entry and
    one audit record (support staff)."""
    import asyncio
    import json
    import uuid

    from core.billing.credits import CreditService
    from core.identity.service import AccountService
    from core.shared.errors import DomainError
    from entrypoints.bootstrap.runtime import start_runtime

    async def run() -> int:
        runtime = await start_runtime(settings, run_jobs=False)
        try:
            user = await runtime.get(AccountService).get_by_email(args.email)
            assert user.id is not None
            entry = await runtime.get(CreditService).grant(
                user.id,
                args.amount,
                idempotency_key=args.idempotency_key or f"cli:{uuid.uuid4().hex}",
                source="cli",
                note=args.reason,
            )
        except DomainError as exc:
            print(f"portico: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            await runtime.aclose()
        if args.json:
            print(
                json.dumps(
                    {
                        "user_id": user.id,
                        "granted": entry.delta,
                        "balance": entry.balance_after,
                        "entry_id": entry.id,
                    }
                )
            )
        else:
            print(f"granted {entry.delta} credits to {args.email}: balance {entry.balance_after}")
        return 0

    return asyncio.run(run())


def _tier(args: argparse.Namespace, settings: Settings) -> int:
    """`portico tier set --email E --code C --reason TEXT`: move a user to a tier (audited);
    every process sharing the configured cache forgets the user's entitlements."""
    import asyncio

    from core.billing.plans import PlanService
    from core.identity.service import AccountService
    from core.shared.errors import DomainError
    from entrypoints.bootstrap.runtime import start_runtime

    async def run() -> int:
        runtime = await start_runtime(settings, run_jobs=False)
        try:
            user = await runtime.get(AccountService).get_by_email(args.email)
            assert user.id is not None
            await runtime.get(PlanService).change_tier(user.id, args.code, reason=args.reason)
        except DomainError as exc:
            print(f"portico: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            await runtime.aclose()
        print(f"{args.email} is now on tier {args.code}")
        return 0

    return asyncio.run(run())


def _check_config(args: argparse.Namespace, settings: Settings) -> int:
    """`portico check-config [--json]`: the production security report; exit 1 on errors.

    The rules are evaluated as production whatever `PORTICO_ENV` says (they are the only
    rules there are, and the point is to check a configuration before deploying it); the
    report says whether this environment would enforce them. Nothing is started.
    """
    import json

    from entrypoints.bootstrap.security_check import check_settings

    findings = check_settings(settings)
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if args.json:
        report = {
            "evaluated_as": "production",
            "env": settings.env,
            "enforced": settings.is_production,
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "findings": [f.as_dict() for f in findings],
        }
        print(json.dumps(report, indent=2))
        return 1 if errors else 0
    if settings.is_production:
        print("Checking the configuration (PORTICO_ENV=production: enforced at every start).")
    else:
        print(
            f"Checking the configuration as production (PORTICO_ENV={settings.env}: the "
            "check is enforced only when PORTICO_ENV=production)."
        )
    for finding in findings:
        print(f"{finding.severity.upper():<8} {finding.rule}: {finding.message}")
    verdict = "a production start would be refused" if errors else "a production start may go on"
    print(f"{errors} error(s), {warnings} warning(s): {verdict}.")
    return 1 if errors else 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portico", description="Portico backend")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database migrations")
    db.add_argument("action", choices=["upgrade", "downgrade"])
    db.add_argument("revision", nargs="?", help="target revision (head / base by default)")
    db.set_defaults(handler=_db)

    jobs = commands.add_parser("jobs", help="background jobs: dead letters")
    job_actions = jobs.add_subparsers(dest="action", required=True)
    dead = job_actions.add_parser("dead", help="list jobs that used up their retries")
    dead.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    dead.add_argument("--before", type=int, default=None, help="only ids below this (paging)")
    retry = job_actions.add_parser("retry", help="make a dead job pending again")
    retry.add_argument("job_id", type=int)
    jobs.set_defaults(handler=_jobs)

    seed = commands.add_parser("seed", help="create the default tiers and credit packs")
    seed.set_defaults(handler=_seed)

    credits = commands.add_parser("credits", help="credits: grant")
    credit_actions = credits.add_subparsers(dest="action", required=True)
    grant = credit_actions.add_parser("grant", help="give a user credits (audited)")
    grant.add_argument("--email", required=True)
    grant.add_argument("--amount", type=_positive_int, required=True)
    grant.add_argument("--reason", required=True, help="why (kept in the ledger entry)")
    grant.add_argument(
        "--idempotency-key", help="the same key again grants nothing more (default: new)"
    )
    grant.add_argument("--json", action="store_true", help="print the result as JSON")
    credits.set_defaults(handler=_credits)

    tier = commands.add_parser("tier", help="tiers: move a user")
    tier_actions = tier.add_subparsers(dest="action", required=True)
    set_tier = tier_actions.add_parser("set", help="move a user to a tier (audited)")
    set_tier.add_argument("--email", required=True)
    set_tier.add_argument("--code", required=True, help="the tier's code, e.g. pro")
    set_tier.add_argument("--reason", required=True, help="why (kept in the audit record)")
    tier.set_defaults(handler=_tier)

    add_payment_commands(commands)

    check = commands.add_parser(
        "check-config",
        help="report the production security check's findings (exit 1 on any error)",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(handler=_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, Settings())


if __name__ == "__main__":
    sys.exit(main())

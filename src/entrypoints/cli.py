"""The `portico` command: serve, migrate, and (later) operate.

Each subcommand builds what it needs from the same settings as the HTTP app.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from entrypoints.bootstrap.settings import Settings


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

"""`portico jobs dead` lists the dead letters; `portico jobs retry ID` re-queues one."""

from __future__ import annotations

import argparse
from typing import Any

from entrypoints.bootstrap.settings import Settings
from entrypoints.cli.common import EXIT_OK, add_json_flag, print_json, run_with_runtime


def _jobs(args: argparse.Namespace, settings: Settings) -> int:
    from core.platform.job_admin import JobAdminService

    # No job loops here: the running processes (or workers) pick up a retried job.
    async def retry(runtime: Any) -> int:
        await runtime.get(JobAdminService).retry_dead(args.job_id)
        if args.json:
            print_json({"job_id": args.job_id, "status": "pending"})
        else:
            print(f"job {args.job_id} is pending again")
        return EXIT_OK

    async def dead(runtime: Any) -> int:
        jobs = await runtime.get(JobAdminService).list_dead(limit=args.limit, before_id=args.before)
        if args.json:
            print_json(
                [
                    {
                        "id": job.id,
                        "name": job.name,
                        "attempts": job.attempts,
                        "failed_at": job.failed_at,
                        "idempotency_key": job.idempotency_key,
                        "last_error": job.last_error,
                    }
                    for job in jobs
                ]
            )
            return EXIT_OK
        print("id\tname\tattempts\tfailed_at\tidempotency_key\tlast_error")
        for job in jobs:
            error = " ".join(job.last_error.split())[:200]
            failed = job.failed_at.isoformat(timespec="seconds")
            key = job.idempotency_key
            print(f"{job.id}\t{job.name}\t{job.attempts}\t{failed}\t{key}\t{error}")
        return EXIT_OK

    return run_with_runtime(settings, retry if args.action == "retry" else dead)


def add_job_commands(commands: Any) -> None:
    jobs = commands.add_parser("jobs", help="background jobs: dead letters")
    actions = jobs.add_subparsers(dest="action", required=True)
    dead = actions.add_parser("dead", help="list jobs that used up their retries")
    dead.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    dead.add_argument("--before", type=int, default=None, help="only ids below this (paging)")
    add_json_flag(dead)
    retry = actions.add_parser("retry", help="make a dead job pending again")
    retry.add_argument("job_id", type=int)
    add_json_flag(retry)
    jobs.set_defaults(handler=_jobs)

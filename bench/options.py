"""Command-line options of `python -m bench.run` (`make bench BENCH_ARGS="..."`).

The defaults keep the whole `make bench` under about five minutes: 2 rounds of 9 runs of
10 s, plus warm-up and setup. `BENCH_DATABASE_URL` and `BENCH_REDIS_URL` point the bench
at other servers (flags win over them).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"


@dataclass(frozen=True)
class BenchOptions:
    seconds: int
    rounds: int
    warmup_seconds: int
    threads: int
    connections: int
    login_connections: int
    database_url: str
    redis_url: str
    pin: bool
    keep_logs: bool
    ai: bool = True


def parse_options(argv: Sequence[str] | None = None) -> BenchOptions:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Portico against bare Starlette ceilings, with wrk on loopback.",
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of each run")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds; each alternates every target once"
    )
    parser.add_argument(
        "--warmup-seconds",
        type=int,
        default=2,
        help="unmeasured load per target and path before round 1 (0: none)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (-c)")
    parser.add_argument(
        "--login-connections",
        type=int,
        default=4,
        help="connections of the parallel login stream",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a database on the Postgres server to use, to create and drop the bench's "
        "own database from (env BENCH_DATABASE_URL; default %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis server (env BENCH_REDIS_URL; default %(default)s)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the server and wrk to different CPUs with taskset",
    )
    parser.add_argument(
        "--no-ai",
        dest="ai",
        action="store_false",
        help="skip the AI phase (messages through the OpenAI adapter to a local model)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the servers' logs after a success"
    )
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.rounds < 1 or args.warmup_seconds < 0:
        parser.error("--seconds must be >= 1, --rounds >= 1, --warmup-seconds >= 0")
    if args.threads < 1 or args.connections < args.threads or args.login_connections < 1:
        parser.error("need --threads >= 1, --connections >= --threads, --login-connections >= 1")
    return BenchOptions(
        seconds=args.seconds,
        rounds=args.rounds,
        warmup_seconds=args.warmup_seconds,
        threads=args.threads,
        connections=args.connections,
        login_connections=args.login_connections,
        database_url=args.database_url,
        redis_url=args.redis_url,
        pin=args.pin,
        keep_logs=args.keep_logs,
        ai=args.ai,
    )

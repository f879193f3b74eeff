"""The `portico` command: serve, migrate, and operate.

Each subcommand builds what it needs from the same settings as the HTTP app; each
concept's commands live in their own module (`database`, `accounts`, `billing`,
`payments`, `jobs`, `config`), and `common` holds the exit codes, error reporting and
the runtime helper they share. `main(argv)` returns the exit code (README: "Command
line").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from entrypoints.bootstrap.settings import Settings
from entrypoints.cli.accounts import add_account_commands
from entrypoints.cli.billing import add_billing_commands
from entrypoints.cli.config import add_config_commands
from entrypoints.cli.database import add_database_commands
from entrypoints.cli.jobs import add_job_commands
from entrypoints.cli.payments import add_payment_commands

__all__ = ["build_parser", "main"]


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from entrypoints.asgi import serve  # the API, and the admin panel when enabled

    serve(settings, host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portico",
        description="Portico backend. Exit codes: 0 done, 1 refused or failed, "
        "2 usage error, 3 a dependency is unavailable.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=_serve)

    add_database_commands(commands)
    add_account_commands(commands)
    add_billing_commands(commands)
    add_payment_commands(commands)
    add_job_commands(commands)
    add_config_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, Settings())


if __name__ == "__main__":
    sys.exit(main())

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, Settings())


if __name__ == "__main__":
    sys.exit(main())

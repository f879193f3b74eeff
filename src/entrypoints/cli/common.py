"""What every `portico` command shares: exit codes, error reporting, `--json`, and
running a body against a started runtime.

Exit codes (README "Command line"): 0 done; 1 refused or failed (a domain error: unknown
user, weak password, a migration that cannot run...); 2 usage error (argparse's own);
3 a dependency is unavailable (database, session store, broker down: try again).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from entrypoints.bootstrap.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """Say what went wrong on stderr; returns the exit code to return."""
    print(f"portico: {message}", file=sys.stderr)
    return code


def warn(message: str) -> None:
    print(f"portico: warning: {message}", file=sys.stderr)


def print_json(value: object) -> None:
    """One JSON document on stdout (times as ISO 8601)."""
    print(json.dumps(value, default=_json_default))


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def guarded(body: Callable[[], int]) -> int:
    """Run a command that starts no runtime (migrations): errors become exit codes."""
    from core.shared.errors import DomainError, UnavailableError
    from entrypoints.bootstrap.migrations import MigrationError

    try:
        return body()
    except UnavailableError as exc:
        return fail(exc.detail, EXIT_UNAVAILABLE)
    except (DomainError, MigrationError) as exc:
        return fail(str(exc))


def run_with_runtime(settings: Settings, body: Callable[[Any], Awaitable[int]]) -> int:
    """Start a runtime (no job runners: the running servers or workers pick up what a
    command queues), run `body(runtime)`, close it. A dependency that is down exits 3,
    any other domain error (or a refused production start) exits 1, each with its
    message on stderr."""
    import asyncio

    from core.shared.errors import DomainError, UnavailableError
    from entrypoints.bootstrap.runtime import start_runtime
    from entrypoints.bootstrap.security_check import SecurityCheckFailed

    async def run() -> int:
        try:
            runtime = await start_runtime(settings, run_jobs=False)
        except UnavailableError as exc:
            return fail(exc.detail, EXIT_UNAVAILABLE)
        except OSError as exc:  # a server refused or timed out before any adapter spoke
            return fail(f"a dependency is unavailable: {exc}", EXIT_UNAVAILABLE)
        except SecurityCheckFailed as exc:
            return fail(str(exc))
        try:
            return await body(runtime)
        except UnavailableError as exc:
            return fail(exc.detail, EXIT_UNAVAILABLE)
        except DomainError as exc:
            return fail(exc.detail)
        finally:
            await runtime.aclose()

    return asyncio.run(run())

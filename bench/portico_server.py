"""Portico under test, started as `make run` serves it, in the services profile.

`portico db upgrade`, then `portico serve --host 127.0.0.1 --port P` (the console script
next to the running Python, as `$(BIN)/portico` in the Makefile), one process, with:
Postgres (a fresh bench database), Redis for sessions, cache and rate limits, a fixed
secret key, rate limits that never refuse the load (10,000 requests per 1 s window,
anonymous and per user, and the same for the login throttle), and every Redis key under
the bench's own prefix. Inherited `PORTICO_*` variables are dropped and the server runs
in the bench's scratch directory (no `.env` is read), so only these settings apply.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.processes import ManagedProcess, pinned

SECRET_KEY = "bench-only-secret-key-never-used-in-production-0123456789"
RATE_LIMIT_WINDOW_SECONDS = 1
RATE_LIMIT_PER_WINDOW = 10_000


@dataclass(frozen=True)
class PorticoSetup:
    database_url: str  # postgresql+asyncpg://...
    redis_url: str
    key_prefix: str  # bench:<run id>:

    @property
    def sessions_prefix(self) -> str:
        return self.key_prefix + "sessions:"


def portico_env(base: dict[str, str], setup: PorticoSetup) -> dict[str, str]:
    env = {name: value for name, value in base.items() if not name.startswith("PORTICO_")}
    limit, window = str(RATE_LIMIT_PER_WINDOW), str(RATE_LIMIT_WINDOW_SECONDS)
    env.update(
        {
            "PORTICO_DATABASE__URL": setup.database_url,
            "PORTICO_REDIS__URL": setup.redis_url,
            "PORTICO_SESSIONS__BACKEND": "redis",
            "PORTICO_CACHE__BACKEND": "redis",
            "PORTICO_RATE_LIMIT__BACKEND": "redis",
            "PORTICO_SECRET_KEY": SECRET_KEY,
            "PORTICO_RATE_LIMIT__WINDOW_SECONDS": window,
            "PORTICO_RATE_LIMIT__ANONYMOUS": limit,
            "PORTICO_RATE_LIMIT__AUTHENTICATED": limit,
            "PORTICO_RATE_LIMIT__LOGIN_PER_ACCOUNT": limit,
            "PORTICO_RATE_LIMIT__LOGIN_PER_ADDRESS": limit,
            "PORTICO_RATE_LIMIT__LOGIN_WINDOW_SECONDS": window,
            "PORTICO_SESSIONS__KEY_PREFIX": setup.sessions_prefix,
            "PORTICO_CACHE__KEY_PREFIX": setup.key_prefix + "cache:",
            "PORTICO_RATE_LIMIT__KEY_PREFIX": setup.key_prefix + "ratelimit:",
            "PORTICO_CELERY__REDIS_KEY_PREFIX": setup.key_prefix + "celery:",
        }
    )
    return env


def portico_command() -> list[str]:
    script = Path(sys.executable).parent / "portico"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "entrypoints.cli"]


def migrate(env: dict[str, str], cwd: Path, log_path: Path) -> None:
    with log_path.open("a", encoding="utf-8") as log:
        done = subprocess.run(
            [*portico_command(), "db", "upgrade"],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"`portico db upgrade` failed ({done.returncode}); see {log_path}")


def start_portico(
    env: dict[str, str], port: int, cwd: Path, log_path: Path, cpu: int | None
) -> ManagedProcess:
    argv = [*portico_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return ManagedProcess.start(
        pinned(argv, cpu), env=env, cwd=cwd, log_path=log_path, name="portico"
    )


def absolute_pythonpath(env: dict[str, str], *first: Path) -> dict[str, str]:
    """`env` with `first` and then its PYTHONPATH entries as absolute paths (children
    run in another directory, where `PYTHONPATH=src` would mean nothing)."""
    entries = [str(path.resolve()) for path in first]
    for entry in env.get("PYTHONPATH", "").split(os.pathsep):
        if entry:
            entries.append(str(Path(entry).resolve()))
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(entries))}

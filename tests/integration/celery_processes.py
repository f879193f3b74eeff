"""Celery worker, beat and CLI processes for the worker tests, and their settings.

Each worker is a `celery ... worker --pool=prefork --concurrency=1` subprocess in a
session of its own (so its pool children can be killed with it). Every child gets its
settings as `PORTICO_*` variables built here and nothing of the developer's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.brokers import Broker
from tests.environment import without_developer_variables
from tests.integration.celery_probes import SPEC

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WAIT_SECONDS = 30.0
LEASE_SECONDS = 3


# --- settings shared by the test process, the workers, beat and the CLI ----------------


def job_settings(database_url: str, broker: Broker, *, relay: bool = True) -> dict[str, Any]:
    return {
        "env": "test",
        "secret_key": "celery-worker-test-secret-key-0123456789-abcdefghij",
        "log_level": "INFO",
        "database": {"url": database_url},
        "jobs": {
            "runner": "celery",
            "relay": relay,
            "extra_handlers": [SPEC],
            "max_attempts": 3,
            "backoff_base_seconds": 0.2,
            "backoff_max_seconds": 1,
            "lease_seconds": LEASE_SECONDS,
            "timeout_seconds": 30,
            "poll_interval_seconds": 0.1,
            "sweep_interval_seconds": 0.5,
        },
        "celery": {
            "broker_url": broker.url,
            "queue": broker.queue,
            "redis_key_prefix": broker.redis_prefix,
            "publish_timeout_seconds": 2,
            # No pidbox exchange left behind on the shared RabbitMQ.
            "remote_control": False,
        },
    }


def as_env(values: dict[str, Any], prefix: str = "PORTICO_") -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key.upper()}"
        if isinstance(value, dict):
            env.update(as_env(value, f"{name}__"))
        elif isinstance(value, list):
            env[name] = json.dumps(value)
        else:
            env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def process_env(values: dict[str, Any]) -> dict[str, str]:
    """The environment of a worker, beat or CLI process: `values` and nothing else of ours.

    The developer's own `PORTICO_*` variables (any case: pydantic-settings ignores case)
    never reach the child, even from fixtures that run before the suite's autouse one;
    each child also runs in a directory of the test's own, so no `.env` is read either.
    The child imports this checkout's sources first, like the test process (not whatever
    checkout the virtualenv was installed from).
    """
    env = without_developer_variables(os.environ)
    env.update(as_env(values), PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    return env


# --- processes ---------------------------------------------------------------------


class CeleryProcess:
    """A `celery` subprocess in its own session; stopped (or killed) with its children."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("ab")
        self.proc = subprocess.Popen(
            [str(BIN / "celery"), "-A", "entrypoints.worker.celery_app", *args],
            env=env,
            cwd=log.parent,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def logged(self, needle: str) -> bool:
        return needle in self.text()

    async def logged_event(self, event: str) -> bool:
        """A JSON log line of this `event` was written (whatever the JSON spacing)."""
        for line in self.text().splitlines():
            if line.startswith("{") and event in line:
                with contextlib.suppress(ValueError):
                    if json.loads(line).get("event") == event:
                        return True
        return False

    def wait_for(self, needle: str, timeout: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared:\n{self.text()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, by PID, to the process and its pool children (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._file.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # warm shutdown
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        self.kill()


def start_worker(values: dict[str, Any], log: Path) -> CeleryProcess:
    queue = values["celery"]["queue"]
    worker = CeleryProcess(
        [
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=INFO",
            "--hostname",
            f"{queue}-{log.stem}@%h",
        ],
        process_env(values),
        log,
    )
    worker.wait_for(" ready.")
    return worker


def running(pid: int) -> bool:
    """True while `pid` runs (a zombie awaiting its reaper does not count)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def parent_of(pid: int) -> int | None:
    """The parent's pid of a live process `pid`; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    # "pid (command) state ppid ...": the command may contain spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[1])


def assert_ran_in_pool_of(worker: CeleryProcess, pids: list[int]) -> None:
    """Every run recorded by a probe (its `os.getpid()`) was in a pool process of
    `worker`: a child of that worker's main process, never the test process itself."""
    assert pids, "no run was recorded"
    for pid in pids:
        assert pid != os.getpid(), "the job ran in the test process, not on a worker"
        assert pid != worker.pid, "the job ran in the worker's main process, not its pool"
        assert parent_of(pid) == worker.pid, f"pid {pid} is not a pool process of the worker"

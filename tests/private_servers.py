"""Private `redis-server` and `memcached` processes for fault-injection tests.

A fault test starts its own server on a free port, connects the code under test to it
and then kills, stops or freezes *that* process by PID; the machine's shared servers are
never touched (RELIABILITY.md, "How it is tested").

    with private_server("redis") as server:        # or "memcached"
        url = server.redis_url(db=0)                # "127.0.0.1:PORT" for memcached
        ...
        server.kill()                               # SIGKILL by PID, reaped
        server.freeze(); ...; server.thaw()         # SIGSTOP (confirmed) / SIGCONT

The server is ready when it answers its protocol (PING / version), not merely when the
port accepts. A missing binary skips the test (fails it under REQUIRE_SERVICES=1).
Leaving the `with` stops the process whatever state a test left it in.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import pytest

from tests.processes import freeze
from tests.services import need

Kind = Literal["redis", "memcached"]

HOST = "127.0.0.1"
START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0
# A free port found by binding port 0 can be taken by someone else before the server
# binds it; the server then exits at once and is started again on another port.
START_ATTEMPTS = 3

_BINARIES: dict[Kind, str] = {"redis": "redis-server", "memcached": "memcached"}
# What each server is asked, and how its answer starts, to count as ready.
_PROBES: dict[Kind, tuple[bytes, bytes]] = {
    "redis": (b"PING\r\n", b"+PONG"),
    "memcached": (b"version\r\n", b"VERSION"),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _command(kind: Kind, binary: str, port: int) -> list[str]:
    if kind == "redis":
        # No persistence: nothing is written to disk and nothing is loaded at start.
        return [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    command = [binary, "-p", str(port), "-l", HOST, "-U", "0", "-m", "16"]
    # memcached refuses to run as root unless told which user to be.
    return [*command, "-u", "root"] if os.geteuid() == 0 else command


@dataclass
class PrivateServer:
    """One server process of one test, addressed by its PID."""

    kind: Kind
    process: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def address(self) -> str:
        """`host:port` (the Memcached servers setting)."""
        return f"{HOST}:{self.port}"

    def redis_url(self, db: int = 0) -> str:
        assert self.kind == "redis"
        return f"redis://{HOST}:{self.port}/{db}"

    def answers(self, timeout: float = 0.2) -> bool:
        """True when the server replies to its protocol's ping within `timeout`."""
        request, expected = _PROBES[self.kind]
        try:
            with socket.create_connection((HOST, self.port), timeout) as connection:
                connection.sendall(request)
                return connection.recv(64).startswith(expected)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL and reap: the port refuses connections once this returns."""
        self._signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM (a clean shutdown) and reap."""
        self._signal(signal.SIGTERM)

    def freeze(self) -> None:
        """SIGSTOP, confirmed: the kernel still accepts connections, no reply comes."""
        freeze(self.pid)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Whatever state a test left it in (running, frozen, gone): gone afterwards."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # a stopped process would not die of SIGTERM
            self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT)

    def _signal(self, signum: signal.Signals) -> None:
        os.kill(self.pid, signum)
        self.process.wait(timeout=STOP_TIMEOUT)


def _binary(kind: Kind) -> str:
    name = _BINARIES[kind]
    binary = shutil.which(name)
    need(f"{name} binary", binary is not None)
    assert binary is not None
    return binary


def start_server(kind: Kind) -> PrivateServer:
    """Start a private server of `kind` and return once it answers; `stop()` it after."""
    binary = _binary(kind)
    for _ in range(START_ATTEMPTS):
        port = free_port()
        process = subprocess.Popen(
            _command(kind, binary, port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        server = PrivateServer(kind, process, port)
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if server.answers():
                return server
            time.sleep(0.02)
        server.stop()
        if time.monotonic() >= deadline:
            break  # it ran but never answered: another port will not help
    pytest.fail(f"the private {_BINARIES[kind]} did not start")


@contextmanager
def private_server(kind: Kind) -> Iterator[PrivateServer]:
    """A private server of `kind` for the duration of the block, stopped by PID after."""
    server = start_server(kind)
    try:
        yield server
    finally:
        server.stop()

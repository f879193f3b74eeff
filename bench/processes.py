"""Child processes of the harness: started in their own process group, always stopped.

Every server and every wrk run is a `ManagedProcess`: `start_new_session=True` puts it in
a process group of its own, so `stop()` ends it with everything it spawned (SIGTERM, then
SIGKILL after a grace period), and the terminal's Ctrl-C reaches only the harness, which
stops its children in its `finally`. Also here: CPU pinning with `taskset`, free ports,
waiting for a server to answer, and reading a process's memory from `/proc`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class ManagedProcess:
    """A child in its own process group. `stop()` is idempotent and never raises."""

    def __init__(self, popen: subprocess.Popen[str], name: str, log: IO[str] | None) -> None:
        self._popen = popen
        self.name = name
        self._log = log

    @classmethod
    def start(
        cls,
        argv: list[str],
        *,
        env: dict[str, str],
        name: str,
        cwd: Path | None = None,
        log_path: Path | None = None,
        capture: bool = False,
    ) -> ManagedProcess:
        """Start `argv`; its output goes to `log_path`, or is captured (`communicate`)."""
        log = log_path.open("a", encoding="utf-8") if log_path is not None else None
        out: int | IO[str] = subprocess.PIPE if capture else (log or subprocess.DEVNULL)
        try:
            popen = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE if capture else subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        except BaseException:
            if log is not None:
                log.close()
            raise
        return cls(popen, name, log)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def exited(self) -> bool:
        """Whether the process has ended (without reaping it: see `stop`)."""
        if self._popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def communicate(self, timeout: float) -> tuple[str, str]:
        stdout, stderr = self._popen.communicate(timeout=timeout)
        return stdout or "", stderr or ""

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM to the whole group, SIGKILL to what is left after `grace_seconds`.

        The group is signalled only while its leader is not reaped (alive or a zombie),
        so its id cannot have been handed to an unrelated process in between.
        """
        try:
            if self._popen.returncode is None:
                os.killpg(self.pid, signal.SIGTERM)
                deadline = time.monotonic() + grace_seconds
                while not self.exited and time.monotonic() < deadline:
                    time.sleep(0.05)
                os.killpg(self.pid, signal.SIGKILL)
                self._popen.wait(timeout=grace_seconds)
        except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
            pass
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


@dataclass(frozen=True)
class CpuPlan:
    """Which CPU the server under load gets and which the load generator gets (or none)."""

    server: int | None
    client: int | None

    def describe(self) -> str:
        if self.server is None:
            return "no CPU pinning (servers and wrk share every CPU)"
        return (
            f"pinned with taskset: the server under load on CPU {self.server}, wrk on CPU "
            f"{self.client} (Postgres and Redis are not pinned: they share the machine)"
        )


def plan_cpus(enabled: bool) -> CpuPlan:
    """Server on the last CPU this process may use, wrk on the first, when there are two
    or more and `taskset` exists; otherwise no pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled or len(cpus) < 2 or shutil.which("taskset") is None:
        return CpuPlan(None, None)
    return CpuPlan(server=cpus[-1], client=cpus[0])


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    # taskset execs the command, so the pid stays the command's own.
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_answering(url: str, process: ManagedProcess, timeout_seconds: float) -> None:
    """Poll `url` until it answers 200; fail early when the process has exited."""
    deadline = time.monotonic() + timeout_seconds
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process.exited:
            raise RuntimeError(f"{process.name} exited while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last_error = f"status {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.2)
    raise RuntimeError(
        f"{process.name} did not answer {url} in {timeout_seconds:.0f} s: {last_error}"
    )


@dataclass(frozen=True)
class Memory:
    rss_kib: int
    peak_kib: int

    def describe(self) -> str:
        return f"{self.rss_kib / 1024:.1f} MiB (VmRSS), peak {self.peak_kib / 1024:.1f} MiB (VmHWM)"


def read_memory(pid: int) -> Memory:
    """VmRSS and VmHWM of a live process, from /proc/PID/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return Memory(rss_kib=fields["VmRSS"], peak_kib=fields["VmHWM"])


# Shared objects whose presence in a process tells which event loop, HTTP parser and Redis
# parser it runs (uvicorn's "auto" picks uvloop and httptools when they can be imported).
_NATIVE_MARKERS = {"uvloop": "/uvloop/", "httptools": "/httptools/", "hiredis": "/hiredis/"}


def native_libraries(pid: int) -> dict[str, bool]:
    """Which of uvloop, httptools and hiredis are loaded in a process (/proc/PID/maps)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name: marker in maps for name, marker in _NATIVE_MARKERS.items()}

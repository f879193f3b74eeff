"""Running `wrk` (the load generator) and reading its results.

Every run goes through `wrk_report.lua`, whose `done()` prints one JSON line; `parse_report`
turns it into a `WrkResult`. Runs are started in their own process group (see
`bench.processes`), so the harness can stop them whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.processes import ManagedProcess, pinned

LUA_SCRIPT = Path(__file__).with_name("wrk_report.lua")
_MARKER = "BENCH_WRK_JSON "

INSTALL_HINT = (
    "wrk (the HTTP load generator) is not installed. Install it with "
    "`sudo apt-get install -y wrk` (Debian/Ubuntu), `sudo dnf install wrk` (Fedora) or "
    "`brew install wrk` (macOS), or build it from https://github.com/wg/wrk, then rerun."
)


class WrkMissingError(RuntimeError):
    pass


def find_wrk() -> str:
    """The path of `wrk`, installed with apt-get first when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it with apt-get (running as root)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
        found = shutil.which("wrk")
        if found:
            return found
    raise WrkMissingError(INSTALL_HINT)


def wrk_version(wrk: str) -> str:
    # `wrk -v` prints its version on the first line and exits 1.
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    lines = (done.stdout or done.stderr).splitlines()
    return lines[0].split(" Copyright")[0].strip() if lines else "unknown"


@dataclass(frozen=True)
class WrkResult:
    """One wrk run. Latencies in milliseconds; `failures` counts every non-answer and every
    status outside 2xx/3xx (a refused or failed request makes the figures meaningless)."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    failures: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def parse_report(stdout: str) -> WrkResult:
    """The `WrkResult` of a run's stdout; ValueError when the script printed no report."""
    for line in stdout.splitlines():
        if line.startswith(_MARKER):
            data = json.loads(line[len(_MARKER) :])
            break
    else:
        raise ValueError(f"wrk printed no report:\n{stdout[-2000:]}")
    failures = {
        name: int(data[key])
        for name, key in (
            ("connect", "connect_errors"),
            ("read", "read_errors"),
            ("write", "write_errors"),
            ("timeout", "timeouts"),
            ("status", "non_2xx_3xx"),
        )
        if int(data[key])
    }
    return WrkResult(
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        p50_ms=int(data["p50_us"]) / 1000,
        p90_ms=int(data["p90_us"]) / 1000,
        p99_ms=int(data["p99_us"]) / 1000,
        max_ms=int(data["max_us"]) / 1000,
        failures=failures,
    )


@dataclass(frozen=True)
class Load:
    """What one wrk run sends: a URL, headers, and optionally a method and body."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    body: str = ""
    # Paths on the URL's server sent in turn instead of the URL's own (empty: the URL).
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrkOptions:
    wrk: str
    threads: int
    connections: int
    timeout_seconds: int = 5


def start_wrk(
    options: WrkOptions,
    load: Load,
    seconds: int,
    *,
    connections: int | None = None,
    cpu: int | None = None,
) -> ManagedProcess:
    """Start one run in its own process group; `finish_wrk` waits for it and parses it."""
    argv = [
        options.wrk,
        f"-t{options.threads}",
        f"-c{connections or options.connections}",
        f"-d{seconds}s",
        f"--timeout={options.timeout_seconds}s",
        "-s",
        str(LUA_SCRIPT),
    ]
    for name, value in load.headers:
        argv += ["-H", f"{name}: {value}"]
    argv.append(load.url)
    env = {
        **os.environ,
        "BENCH_WRK_METHOD": load.method,
        "BENCH_WRK_BODY": load.body,
        "BENCH_WRK_PATHS": ",".join(load.paths),
    }
    return ManagedProcess.start(pinned(argv, cpu), env=env, capture=True, name="wrk")


def finish_wrk(process: ManagedProcess, seconds: int) -> WrkResult:
    stdout, stderr = process.communicate(timeout=seconds + 30)
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}: {stderr.strip()[-2000:]}")
    return parse_report(stdout)


def run_wrk(options: WrkOptions, load: Load, seconds: int, *, cpu: int | None = None) -> WrkResult:
    process = start_wrk(options, load, seconds, cpu=cpu)
    try:
        return finish_wrk(process, seconds)
    finally:
        process.stop()

"""`make bench`: Portico against bare Starlette ceilings, with wrk on loopback.

    python -m bench.run [--seconds 10] [--rounds 2] [--connections 32] ...

Sets up the stack (`bench.stack`), warms up, runs the rounds (`bench.measure`), reads
Portico's memory after the whole load, prints the tables (`bench.report`) and tears
everything down, also on failure or Ctrl-C. Exit status: 0 when every request of every
measured run got a 2xx/3xx answer, 1 when some did not (the figures are then not valid)
or the bench failed, 2 when wrk is missing, 130 when interrupted.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench.llm import LlmBench, LlmMeasurements, llm_table
from bench.measure import Bench, Measurements
from bench.options import BenchOptions, parse_options
from bench.processes import plan_cpus, read_memory
from bench.report import login_table, memory_lines, scenario_table
from bench.scenarios import RUNS_PER_ROUND
from bench.stack import REPO_ROOT, BenchStack
from bench.wrk import WrkMissingError, WrkOptions, find_wrk, wrk_version

LOG_TAIL_LINES = 30


SETTLE_SECONDS = 2.0


def say(text: str) -> None:
    print(text, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every `finally` runs; SIGINT
    # too even where it was ignored (a background job), so cleanup never depends on that.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        wrk = find_wrk()
    except WrkMissingError as exc:
        print(exc, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    cpus = plan_cpus(options.pin)
    stack = BenchStack(options, cpus)
    status = 1
    try:
        with stack:
            _header(options, wrk, cpus.describe())
            fixtures = stack.start()
            _setup_summary(stack)
            wrk_options = WrkOptions(wrk, options.threads, options.connections)
            bench = Bench(
                stack, fixtures, wrk_options, options.seconds, options.login_connections, say
            )
            measurements = Measurements()
            bench.warm_up(options.warmup_seconds)
            for number in range(1, options.rounds + 1):
                bench.round(number, measurements)
            assert stack.portico is not None
            # The requests still in flight when wrk stops (a login stream's last hashes
            # take up to a second) finish first: what is read is what the load left.
            time.sleep(SETTLE_SECONDS)
            after_load = read_memory(stack.portico.pid)
            ceilings = {name: read_memory(p.pid) for name, p in stack.ceilings.items()}
            _results(measurements)
            say("")
            say(memory_lines(stack.startup_memory, after_load, ceilings))
            failures = measurements.failures()
            if options.ai:
                failures += _ai_phase(stack, wrk_options, options)
            if failures:
                say("\nINVALID: requests were refused or failed; these figures are not valid:")
                for failure in failures:
                    say(f"  {failure}")
            status = 1 if failures else 0
    except KeyboardInterrupt:
        say("\ninterrupted: every process the bench started has been stopped")
        status = 130
    except Exception as exc:
        say(f"\nbench failed: {type(exc).__name__}: {exc}")
        _log_tail(stack.portico_log)
    finally:
        for note in stack.teardown_notes:
            say(f"teardown: {note}")
        if status == 0 and not options.keep_logs:
            shutil.rmtree(stack.scratch, ignore_errors=True)
        elif stack.scratch.exists():
            say(f"logs kept in {stack.scratch}")
    return status


def _ai_phase(stack: BenchStack, wrk: WrkOptions, options: BenchOptions) -> list[str]:
    """Messages through the OpenAI adapter against the model called directly
    (`bench.llm`); returns the failed runs."""
    say("")
    ai = LlmBench(stack, wrk, options.seconds, say)
    ai.start()
    measured = LlmMeasurements()
    for number in range(1, options.rounds + 1):
        ai.round(number, measured)
    say("")
    say(llm_table(measured, options.connections))
    return measured.failures


def _header(options: BenchOptions, wrk: str, pinning: str) -> None:
    runs = options.rounds * RUNS_PER_ROUND
    say("# make bench: Portico against bare Starlette ceilings")
    say(f"date: {datetime.now(UTC).isoformat(timespec='seconds')}  commit: {_commit()}")
    say(
        f"machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()}, "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} at start"
    )
    say(
        f"load: {wrk_version(wrk)}, -t{options.threads} -c{options.connections}, "
        f"{options.seconds} s per run, {options.rounds} rounds of {RUNS_PER_ROUND} runs "
        f"(~{runs * options.seconds:.0f} s of load), login stream -c{options.login_connections}"
    )
    say(f"CPUs: {pinning}")


def _setup_summary(stack: BenchStack) -> None:
    assert stack.uvicorn_flags is not None
    say(f"uvicorn flags for every server: {stack.uvicorn_flags.describe()}")
    native = stack.native_libraries()
    for name, libs in native.items():
        loaded = ", ".join(f"{lib} {'yes' if on else 'no'}" for lib, on in libs.items())
        say(f"loaded in {name}: {loaded}")
    # hiredis may differ (the health ceiling has no Redis); the loop and parser must not.
    servers = {(libs["uvloop"], libs["httptools"]) for libs in native.values()}
    if len(servers) > 1:
        say("WARNING: the servers do not run the same event loop and HTTP parser")
    for check in stack.checks:
        say(f"checked: {check}")
    say(f"Portico: {stack.database.name} on Postgres, Redis keys under {stack.key_prefix}")
    say("")


def _results(measurements: Measurements) -> None:
    say("")
    say("Medians over rounds; ratios are Portico / its ceiling per round, median (range).")
    say("The anonymous /auth/csrf ceiling is a bare route of the health ceiling returning")
    say("a random token of the same length in the same JSON shape, with the same cookie.")
    say("Bearer /users/me is compared with the minimal-I/O ceiling read by session cookie.")
    say("")
    say(scenario_table(measurements))
    say("")
    say(login_table(measurements))


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' (uncommitted changes)' if dirty else ''}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _log_tail(path: Path) -> None:
    try:
        lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return
    say(f"last lines of {path}:")
    for line in lines:
        say(f"  {line}")


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    say(f"bench took {time.monotonic() - started:.0f} s")
    sys.exit(code)

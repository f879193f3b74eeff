"""The measuring loop: warm-up, then rounds that alternate Portico and its ceilings.

Each round runs every scenario's two targets back to back, ceiling first in odd rounds
and Portico first in even ones (so a drift of the machine does not always favour the
same side), then the login stream: a second wrk logs in over and over from one second
before the reads start until one second after they end. Each round signs in for a fresh
bearer token (a real argon2 sign-in), so no access token expires mid-bench.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.scenarios import (
    COOKIE_READS,
    PORTICO,
    Scenario,
    build_scenarios,
    login_load,
    reads_load,
)
from bench.stack import BenchStack, Fixtures
from bench.wrk import Load, WrkOptions, WrkResult, finish_wrk, run_wrk, start_wrk

PAUSE_SECONDS = 0.5
LOGIN_LEAD_SECONDS = 1


@dataclass(frozen=True)
class Run:
    round: int
    scenario: str
    target: str
    result: WrkResult


@dataclass(frozen=True)
class LoginStream:
    round: int
    idle_reads: WrkResult
    reads: WrkResult
    logins: WrkResult


@dataclass
class Measurements:
    runs: list[Run] = field(default_factory=list)
    login_streams: list[LoginStream] = field(default_factory=list)

    def failures(self) -> list[str]:
        found = [
            f"round {r.round} {r.scenario} on {r.target}: {r.result.failures}"
            for r in self.runs
            if r.result.failed
        ]
        for s in self.login_streams:
            for what, result in (("reads", s.reads), ("logins", s.logins)):
                if result.failed:
                    found.append(f"round {s.round} login stream {what}: {result.failures}")
        return found


class Bench:
    def __init__(
        self,
        stack: BenchStack,
        fixtures: Fixtures,
        wrk: WrkOptions,
        seconds: int,
        login_connections: int,
        say: Callable[[str], None],
    ) -> None:
        self.stack = stack
        self.fx = fixtures
        self.wrk = wrk
        self.seconds = seconds
        self.login_connections = login_connections
        self.say = say
        self.client_cpu = stack.cpus.client

    def warm_up(self, seconds: int) -> None:
        """Unmeasured load on every target and path; a refused request stops the bench."""
        if seconds <= 0:
            return
        for scenario in self._scenarios():
            for target, load in (
                (scenario.ceiling_name, scenario.ceiling),
                (PORTICO, scenario.portico),
            ):
                result = run_wrk(self.wrk, load, seconds, cpu=self.client_cpu)
                if result.failed:
                    raise RuntimeError(
                        f"warm-up of {scenario.title} on {target} failed: {result.failures}"
                    )
        self.say(f"warm-up: {seconds:g} s on every target and path")

    def round(self, number: int, into: Measurements) -> None:
        self.say(f"round {number}")
        idle_reads: WrkResult | None = None
        for scenario in self._scenarios():
            pair = [(scenario.ceiling_name, scenario.ceiling), (PORTICO, scenario.portico)]
            for target, load in pair if number % 2 else reversed(pair):
                result = self._measure(load)
                into.runs.append(Run(number, scenario.title, target, result))
                self.say(_line(scenario.title, target, result))
                if scenario.title == COOKIE_READS and target == PORTICO:
                    idle_reads = result
        assert idle_reads is not None
        stream = self._login_stream(number, idle_reads)
        into.login_streams.append(stream)
        self.say(_line("cookie /users/me + logins", PORTICO, stream.reads))
        self.say(_line("  the login stream", PORTICO, stream.logins))

    def _scenarios(self) -> list[Scenario]:
        assert self.stack.api is not None
        return build_scenarios(self.fx, self.stack.api.access_token(self.fx.reader))

    def _measure(self, load: Load) -> WrkResult:
        time.sleep(PAUSE_SECONDS)
        return run_wrk(self.wrk, load, self.seconds, cpu=self.client_cpu)

    def _login_stream(self, number: int, idle_reads: WrkResult) -> LoginStream:
        time.sleep(PAUSE_SECONDS)
        stream_seconds = self.seconds + 2 * LOGIN_LEAD_SECONDS
        logins = start_wrk(
            self.wrk,
            login_load(self.fx),
            stream_seconds,
            connections=self.login_connections,
            cpu=self.client_cpu,
        )
        try:
            time.sleep(LOGIN_LEAD_SECONDS)
            reads = run_wrk(self.wrk, reads_load(self.fx), self.seconds, cpu=self.client_cpu)
            login_result = finish_wrk(logins, stream_seconds)
        finally:
            logins.stop()
        return LoginStream(number, idle_reads, reads, login_result)


def _line(scenario: str, target: str, r: WrkResult) -> str:
    failed = f"  FAILED {r.failures}" if r.failed else ""
    return (
        f"  {scenario:<26} {target:<20} {r.rps:9.0f} req/s  p50 {r.p50_ms:7.1f} ms  "
        f"p99 {r.p99_ms:7.1f} ms{failed}"
    )

"""The AI phase of `make bench`: what Portico adds to a model call.

A zero-latency OpenAI-compatible model (`bench.ceilings.model`) runs in its own process;
a second Portico, configured as the first but with `PORTICO_LLM__BACKEND=openai` pointed
at that model, serves messages through the real OpenAI adapter (the official SDK). The
bench registers `USERS` accounts, moves them to the enterprise tier and grants them
credits (`bench.ai_accounts`); each owns `CONVERSATIONS_PER_USER` conversations, and the
load sends to every conversation in turn, each with its owner's access token. Measured per
round, each pair back to back:

- messages per second: wrk `-c<connections>` posting messages to Portico, against wrk
  posting the same prompt to the model directly;
- added latency per message: the same at `-c1`, p50 through Portico minus p50 direct
  (goal: at most 2 ms);
- time to the first SSE event: `FIRST_EVENT_SAMPLES` streamed messages one after another
  on fresh connections, from the request's last byte to the first `event: delta` of
  Portico's answer, against the same to the first body byte of the model's own stream
  (goal: at most 5 ms more).

Each message reserves, records, settles and charges credits and saves two messages, so
the figures are the whole `send_message`, not only the adapter.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.accounts import Account, PorticoApi
from bench.ceilings.serving import portico_uvicorn_flags
from bench.floors import SEND_READS, SEND_WRITES, Floors, measure_floors
from bench.portico_server import portico_command, start_portico
from bench.processes import ManagedProcess, free_port, wait_until_answering
from bench.stack import START_TIMEOUT_SECONDS, BenchStack
from bench.wrk import Load, WrkOptions, WrkResult, run_wrk

USERS = 8  # one user's sends queue on its balance: a server serves many users
CONVERSATIONS_PER_USER = 4
CREDITS = 10_000_000
FIRST_EVENT_SAMPLES = 40
MAX_RUN_SECONDS = 5  # the enterprise tier allows 20,000 messages a day
PROMPT = "Hello, model"
ADDED_LATENCY_GOAL_MS = 2.0
FIRST_EVENT_GOAL_MS = 5.0


@dataclass
class LlmMeasurements:
    direct_rps: list[float] = field(default_factory=list)
    portico_rps: list[float] = field(default_factory=list)
    direct_p50_ms: list[float] = field(default_factory=list)
    portico_p50_ms: list[float] = field(default_factory=list)
    direct_first_ms: list[float] = field(default_factory=list)
    portico_first_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    history: list[float] = field(default_factory=list)  # messages per conversation at the end
    floors: list[Floors] = field(default_factory=list)


class LlmBench:
    def __init__(
        self,
        stack: BenchStack,
        wrk: WrkOptions,
        seconds: int,
        say: Callable[[str], None],
    ) -> None:
        self.stack = stack
        self.wrk = wrk
        self.seconds = min(seconds, MAX_RUN_SECONDS)
        self.say = say
        self.model_url = ""
        self.portico_url = ""
        self.users: list[Account] = []

    def start(self) -> None:
        """The model, the second Portico, the accounts and their conversations."""
        flags = json.dumps(portico_uvicorn_flags().flags)
        model_port = free_port()
        self.stack.start_server(
            "model",
            ["bench.ceilings.model", f"--port={model_port}", f"--uvicorn-flags={flags}"],
            model_port,
        )
        self.model_url = f"http://127.0.0.1:{model_port}"
        env = {
            **self.stack.portico_env,
            "PORTICO_LLM__BACKEND": "openai",
            "PORTICO_LLM__BASE_URL": f"{self.model_url}/v1",
            "PORTICO_LLM__API_KEY": "bench-key",
            "PORTICO_LLM__MAX_RETRIES": "0",
        }
        port = free_port()
        log = self.stack.scratch / "portico-llm.log"
        process: ManagedProcess = self.stack.adopt(
            start_portico(env, port, self.stack.scratch, log, self.stack.cpus.server)
        )
        self.portico_url = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{self.portico_url}/ready", process, START_TIMEOUT_SECONDS)
        tag = self.stack.key_prefix.split(":")[1]
        self.users = [Account(f"ai{i}-{tag}@example.com", f"ai{i}_{tag}") for i in range(USERS)]
        api = PorticoApi(self.portico_url)
        try:
            pre = api.pre_session()
            for user in self.users:
                api.register(user, pre)
            self._python(env, "seed")
            self._python(
                env,
                "ai",
                "--tier",
                "enterprise",
                "--credits",
                str(CREDITS),
                *(u.email for u in self.users),
            )
        finally:
            api.close()
        self.say(
            f"AI phase: the model at {self.model_url}, Portico (LLM backend openai) at "
            f"{self.portico_url}, {USERS} users x {CONVERSATIONS_PER_USER} new conversations "
            f"per run, {self.seconds} s per run"
        )

    def round(self, number: int, into: LlmMeasurements) -> None:
        api = PorticoApi(self.portico_url)
        try:
            tokens = {user.email: api.access_token(user) for user in self.users}
            # Every run starts on new conversations, so each run sends the same history
            # (growing from none to what the run's messages leave) whatever ran before.
            fresh = [self._conversations(api, tokens) for _ in range(3)]
        finally:
            api.close()
        direct = self._direct_load()
        for connections in dict.fromkeys((self.wrk.connections, 1)):
            options = WrkOptions(self.wrk.wrk, min(self.wrk.threads, connections), connections)
            portico = self._portico_load(fresh.pop(), tokens)
            # Alternate which goes first, as the main rounds do.
            order = (("direct", direct), ("portico", portico))
            if number % 2 == 0:
                order = order[::-1]
            results = {
                name: self._run(options, load, f"{name} -c{connections}", into)
                for name, load in order
            }
            history = 2 * results["portico"].requests / len(portico.paths or ("",))
            into.history.append(history)
            if connections == self.wrk.connections:
                into.direct_rps.append(results["direct"].rps)
                into.portico_rps.append(results["portico"].rps)
            if connections == 1:
                into.direct_p50_ms.append(results["direct"].p50_ms)
                into.portico_p50_ms.append(results["portico"].p50_ms)
        into.direct_first_ms.append(self._first_byte_direct())
        into.floors.append(measure_floors(self.stack.database.dsn, self.model_url))
        first = self.users[0].email
        into.portico_first_ms.append(self._first_event_portico(tokens[first], fresh.pop()[first]))
        self.say(
            f"  AI round {number}: {into.portico_rps[-1]:.0f} msg/s vs {into.direct_rps[-1]:.0f} "
            f"direct; p50 at -c1 {into.portico_p50_ms[-1]:.2f} vs {into.direct_p50_ms[-1]:.2f} "
            f"ms; first event {into.portico_first_ms[-1]:.2f} vs first byte "
            f"{into.direct_first_ms[-1]:.2f} ms; conversations ended with up to "
            f"{max(into.history[-2:]):.0f} messages; floors: a durable commit "
            f"{into.floors[-1].commit_ms:.2f} ms, a read {into.floors[-1].read_ms:.2f} ms, a write "
            f"{into.floors[-1].write_ms:.2f} ms, the SDK's call {into.floors[-1].sdk_ms:.2f} ms"
        )

    def _conversations(self, api: PorticoApi, tokens: dict[str, str]) -> dict[str, list[int]]:
        return {
            email: [self._conversation(api, token) for _ in range(CONVERSATIONS_PER_USER)]
            for email, token in tokens.items()
        }

    # --- loads --------------------------------------------------------------------------

    def _portico_load(self, conversations: dict[str, list[int]], tokens: dict[str, str]) -> Load:
        requests = tuple(
            f"/api/v1/conversations/{conversation}/messages {tokens[email]}"
            for email, owned in conversations.items()
            for conversation in owned
        )
        path, token = requests[0].split(" ")
        return Load(
            f"{self.portico_url}{path}",
            (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")),
            method="POST",
            body=json.dumps({"content": PROMPT}),
            paths=requests,
        )

    def _direct_load(self) -> Load:
        return Load(
            f"{self.model_url}/v1/chat/completions",
            (("Authorization", "Bearer bench-key"), ("Content-Type", "application/json")),
            method="POST",
            body=json.dumps(_model_body(stream=False)),
        )

    def _run(self, options: WrkOptions, load: Load, what: str, into: LlmMeasurements) -> WrkResult:
        result = run_wrk(options, load, self.seconds, cpu=self.stack.cpus.client)
        if result.failed:
            into.failures.append(f"AI {what}: {result.failures} of {result.requests}")
        return result

    # --- first bytes ---------------------------------------------------------------------

    def _first_byte_direct(self) -> float:
        body = json.dumps(_model_body(stream=True)).encode()
        url = urlsplit(self.model_url)
        request = _request(url.netloc, "/v1/chat/completions", "Bearer bench-key", body)
        return _median_first(url.port or 80, request, b"\r\n\r\n", b"data: ")

    def _first_event_portico(self, token: str, conversations: list[int]) -> float:
        url = urlsplit(self.portico_url)
        samples = []
        for i in range(FIRST_EVENT_SAMPLES):
            body = json.dumps({"content": PROMPT}).encode()
            path = f"/api/v1/conversations/{conversations[i % len(conversations)]}/messages"
            request = _request(url.netloc, path, f"Bearer {token}", body, stream=True)
            samples.append(_first(url.port or 80, request, b"event: delta"))
        return statistics.median(samples)

    def _conversation(self, api: PorticoApi, token: str) -> int:
        response = api.post_json(
            "/api/v1/conversations", {"title": "bench"}, {"Authorization": f"Bearer {token}"}
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/v1/conversations answered {response.status_code}")
        return int(response.json()["id"])

    def _python(self, env: dict[str, str], what: str, *args: str) -> None:
        """`portico seed`, or `bench.ai_accounts` (`ai`), in the second Portico's env."""
        if what == "seed":
            argv = [*portico_command(), "seed"]
        else:
            argv = [sys.executable, "-m", "bench.ai_accounts", *args]
        done = subprocess.run(
            argv,
            env=env,
            cwd=self.stack.scratch,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(argv[:4])}` failed: {done.stderr.strip()[-2000:]}")


def _model_body(*, stream: bool) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "portico-fake",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 1024,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def _request(host: str, path: str, auth: str, body: bytes, *, stream: bool = False) -> bytes:
    accept = "text/event-stream" if stream else "application/json"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/json\r\nAccept: {accept}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _median_first(port: int, request: bytes, *markers: bytes) -> float:
    return statistics.median(_first(port, request, *markers) for _ in range(FIRST_EVENT_SAMPLES))


def _first(port: int, request: bytes, *markers: bytes) -> float:
    """Milliseconds from the request's last byte sent to the first of `markers` read in
    order (each after the previous); the answer is then read to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        sent = time.perf_counter()
        seen, at, found = b"", 0, None
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            seen += chunk
            if found is None:
                for marker in markers:
                    at = seen.find(marker, at)
                    if at < 0:
                        at = 0
                        break
                else:
                    found = time.perf_counter()
    if found is None or not seen.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"no {markers[-1]!r} in the answer: {seen[:300]!r}")
    return (found - sent) * 1000


def llm_table(m: LlmMeasurements, connections: int) -> str:
    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    ratios = [p / d for p, d in zip(m.portico_rps, m.direct_rps, strict=True) if d]
    added = [p - d for p, d in zip(m.portico_p50_ms, m.direct_p50_ms, strict=True)]
    first = [p - d for p, d in zip(m.portico_first_ms, m.direct_first_ms, strict=True)]
    beyond = [a - f.of_a_send() for a, f in zip(added, m.floors, strict=True)]

    def spread(values: list[float], fmt: str) -> str:
        text = format(med(values), fmt)
        if len(values) > 1:
            text += f" ({format(min(values), fmt)} to {format(max(values), fmt)})"
        return text

    return "\n".join(
        [
            "| AI message | the model directly | through Portico | Portico vs direct | goal |",
            "|---|---|---|---|---|",
            f"| messages/s, -c{connections} | {med(m.direct_rps):.0f} | {med(m.portico_rps):.0f} "
            f"| ratio {spread(ratios, '.2f')} | |",
            f"| p50 ms at -c1 | {med(m.direct_p50_ms):.2f} | {med(m.portico_p50_ms):.2f} "
            f"| +{spread(added, '.2f')} ms | <= {ADDED_LATENCY_GOAL_MS:.0f} ms |",
            f"| first byte / first SSE event, ms | {med(m.direct_first_ms):.2f} "
            f"| {med(m.portico_first_ms):.2f} | +{spread(first, '.2f')} ms "
            f"| <= {FIRST_EVENT_GOAL_MS:.0f} ms |",
            f"| floor: one durable commit, ms (a send makes 2) | | "
            f"{med([f.commit_ms for f in m.floors]):.2f} | | |",
            f"| floor: one read, ms (a send makes {SEND_READS}) | | "
            f"{med([f.read_ms for f in m.floors]):.2f} | | |",
            f"| floor: one write, ms (a send makes {SEND_WRITES}) | | "
            f"{med([f.write_ms for f in m.floors]):.2f} | | |",
            f"| floor: the SDK's call (the adapter, in the bench process), ms | "
            f"{med(m.direct_p50_ms):.2f} | {med([f.sdk_ms for f in m.floors]):.2f} | | |",
            f"| a send's floors together (2 commits, the statements, the SDK) | | "
            f"{med([f.of_a_send() for f in m.floors]):.2f} | | |",
            f"| added p50 beyond the floors | | | +{spread(beyond, '.2f')} ms | |",
            f"| messages per conversation at a run's end | | {med(m.history):.0f} | | |",
        ]
    )

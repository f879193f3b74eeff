"""RELIABILITY.md "Limits and faults" end to end: the app under uvicorn, on Redis and
Memcached servers of the test's own, which the test kills, pauses or freezes by PID
while real HTTP clients (several threads, one connection each) keep asking.

- Redis killed (SIGKILL or SIGTERM) under load: anonymous routes are served (the general
  limit fails open and counts it), session routes answer 503 with Retry-After, bearer
  reads are served from the database, sign-in throttling goes on in process.
- Redis paused (`CLIENT PAUSE ... ALL` from another client): /health stays fast while
  requests that need Redis wait one socket timeout and then fail open (or answer 503).
- Memcached killed or frozen as the cache: authenticated reads and writes go on.

No answer is ever a 500: every response passes the suite's `ResponseChecker` (documented
status, valid problem body, no traceback) and the app's own request counter is checked
for a 5xx other than 503 at the end of every test. The database is a SQLite file of the
test's own, so each test owns every server it talks to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pymemcache.client.base import Client as MemcacheClient  # type: ignore[import-untyped]

from tests.live_app import LiveApp, live_app, settings_for
from tests.private_servers import PrivateServer, private_server
from tests.unit.http.support import new_credentials

pytestmark = pytest.mark.integration

CSRF = "/api/v1/auth/csrf"  # anonymous, touches only the rate limiter
ME = "/api/v1/users/me"
HEALTH = "/health"  # touches nothing
FAIL_OPEN = "portico_rate_limit_fail_open_total"

REDIS_TIMEOUT = 0.5  # connect and socket timeout of the app's Redis clients
MEMCACHED_TIMEOUT = 0.5  # connect and read timeout of the app's Memcached client
# Latency bounds: every bound here passes on a loaded 2-core machine. Only the paused
# Redis test is about latency (what waits, and for how long); the other tests are about
# answers, and bound each request only so that none hangs (a dependency timeout plus
# HANG_SLACK, far above what a request takes).
HANG_SLACK = 1.5
PHASE_DEADLINE = 8.0  # no phase of a test may take longer than this


# --- the app under uvicorn ------------------------------------------------------------


def redis_values(
    server: PrivateServer, timeout: float = REDIS_TIMEOUT, **rate_limit: Any
) -> dict[str, Any]:
    """Sessions, rate limits and the cache on the private Redis (logical database 0)."""
    return {
        "redis": {
            "url": server.redis_url(0),
            "connect_timeout_seconds": timeout,
            "socket_timeout_seconds": timeout,
        },
        "sessions": {"backend": "redis"},
        "cache": {"backend": "redis"},
        "rate_limit": {
            "backend": "redis",
            "fail_open": True,
            # High enough that the load itself is never limited.
            "anonymous": 10_000,
            "authenticated": 10_000,
            **rate_limit,
        },
    }


def assert_no_server_errors(app: LiveApp) -> None:
    """The app answered no 5xx but 503 to anyone (not only to the test's own clients)."""
    errors = {s for s in app.metrics().statuses() if s.startswith("5") and s != "503"}
    assert not errors, f"the app answered {sorted(errors)}"


# --- load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    kind: str
    started: float
    elapsed: float
    status: int
    code: str | None
    retry_after: str | None
    body: Any

    @property
    def finished(self) -> float:
        return self.started + self.elapsed


def ask(kind: str, client: httpx.Client, path: str) -> Answer:
    started = time.monotonic()
    response = client.get(path)
    elapsed = time.monotonic() - started
    problem = response.headers.get("content-type", "").startswith("application/problem+json")
    body = response.json() if response.content and path != "/metrics" else None
    return Answer(
        kind=kind,
        started=started,
        elapsed=elapsed,
        status=response.status_code,
        code=body.get("code") if problem and isinstance(body, dict) else None,
        retry_after=response.headers.get("retry-after"),
        body=body,
    )


def ask_repeatedly(times: int, kind: str, client: httpx.Client, path: str) -> list[Answer]:
    return [ask(kind, client, path) for _ in range(times)]


class Load:
    """One client thread per route, asking it back to back until `stop()`.

    Anything a thread raises (a failed response check, a transport error) fails the test
    at the next `wait_for` or at `stop()`.
    """

    def __init__(self, routes: list[tuple[str, httpx.Client, str]]) -> None:
        self.kinds = {kind for kind, _, _ in routes}
        self.answers: list[Answer] = []  # appended by the threads (atomic)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(len(routes), thread_name_prefix="load")
        self._futures = [self._pool.submit(self._run, *route) for route in routes]

    def _run(self, kind: str, client: httpx.Client, path: str) -> None:
        while not self._stop.is_set():
            self.answers.append(ask(kind, client, path))

    def count(self, kind: str, *, started_after: float) -> int:
        return sum(1 for a in list(self.answers) if a.kind == kind and a.started > started_after)

    def wait_for(self, at_least: int, *, started_after: float = 0.0) -> None:
        """Until every kind has `at_least` answers to requests started after the moment."""
        deadline = time.monotonic() + PHASE_DEADLINE
        while any(self.count(k, started_after=started_after) < at_least for k in self.kinds):
            for future in self._futures:
                if future.done():
                    future.result()  # a thread ended early: raise what it raised
            assert time.monotonic() < deadline, "the load made too little progress"
            time.sleep(0.01)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for future in self._futures:
            future.result(timeout=PHASE_DEADLINE)
        self._pool.shutdown()
        return list(self.answers)


# --- Redis killed under load ------------------------------------------------------------


@pytest.mark.parametrize("stop_redis", [PrivateServer.kill, PrivateServer.terminate])
def test_redis_stopped_under_load_degrades_without_a_500(
    tmp_path: Path, stop_redis: Callable[[PrivateServer], None]
) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(private_server("redis"))
        settings = settings_for(
            tmp_path, **redis_values(server, login_per_account=2, login_per_address=10_000)
        )
        app = stack.enter_context(live_app(settings))

        ada = app.browser()
        ada_credentials = ada.signup()  # a session in Redis
        bob = new_credentials()
        assert app.browser().register(bob).status_code == 201  # no sign-in attempt yet
        anonymous = app.client().get(CSRF)
        assert anonymous.status_code == 200
        assert anonymous.headers["ratelimit-limit"] == "10000"  # counted in Redis
        fail_open_before = app.metrics().total(FAIL_OPEN)
        assert fail_open_before == 0

        load = Load(
            [
                *(("anonymous", app.client(), CSRF) for _ in range(2)),
                *(("session", app.session_client(ada), ME) for _ in range(2)),
                ("bearer", app.bearer_client(ada_credentials), ME),
                ("health", app.client(), HEALTH),
            ]
        )
        try:
            load.wait_for(5)
            killed_at = time.monotonic()
            stop_redis(server)  # by PID; returns once the process is gone
            stopped = time.monotonic()
            load.wait_for(10, started_after=stopped)
        finally:
            answers = load.stop()

        before = [a for a in answers if a.finished < killed_at]
        after = [a for a in answers if a.started > stopped]
        # Nothing but these, ever (requests in flight at the kill included).
        allowed = {"anonymous": {200}, "session": {200, 503}, "bearer": {200}, "health": {200}}
        assert {a.kind for a in before} == {a.kind for a in after} == set(allowed)
        assert {(a.kind, a.status) for a in answers} <= {
            (kind, status) for kind, statuses in allowed.items() for status in statuses
        }
        assert all(a.status == 200 for a in before)
        # A dead Redis refuses at once: no request hangs on it.
        slowest = max(after, key=lambda a: a.elapsed)
        assert slowest.elapsed < REDIS_TIMEOUT + HANG_SLACK, slowest
        users = [a for a in answers if a.kind in ("session", "bearer") and a.status == 200]
        assert {a.body["username"] for a in users} == {ada_credentials.username}
        # Session routes need the store: 503 with Retry-After, never a 500 or a 401.
        for answer in (a for a in after if a.kind == "session"):
            assert answer.status == 503, answer
            assert answer.code == "service_unavailable"
            assert answer.retry_after is not None and int(answer.retry_after) >= 1
        # The general limit failed open, once per request that got past authentication.
        fail_open_after = app.metrics().total(FAIL_OPEN)
        let_through = sum(1 for a in after if a.kind in ("anonymous", "bearer"))
        assert fail_open_after - fail_open_before >= let_through > 0

        # Sign-in throttling never fails open: with the store down it counts in process.
        # (The first attempt is right but no session can be stored: 503, not a 500.)
        browser = app.browser()
        first = browser.login(bob.email, bob.password)
        assert first.status_code == 503, first.text
        assert browser.login(bob.email, "a wrong password, long enough").status_code == 401
        throttled = browser.login(bob.email, bob.password)
        assert throttled.status_code == 429, throttled.text
        assert throttled.json()["code"] == "login_throttled"
        assert int(throttled.headers["retry-after"]) >= 1

        assert_no_server_errors(app)


# --- Redis paused -----------------------------------------------------------------------

# The point of this test is latency, so the bounds tell apart what must differ, with
# margins a loaded 2-core machine passes. A request that needs Redis waits one timeout
# (PAUSED_TIMEOUT): at least 0.9 of it, and less than ONE_TIMEOUT_WITHIN, which leaves
# 0.9 s for the request itself but fails a retried timeout. /health needs nothing and
# must answer within half a timeout, which a request held up by Redis never could.
PAUSED_TIMEOUT = 1.0
ONE_TIMEOUT_WITHIN = 1.9 * PAUSED_TIMEOUT
HEALTH_WITHIN = PAUSED_TIMEOUT / 2
# Outlasts the stall (two requests per client, each under ONE_TIMEOUT_WITHIN), so only
# the timeout, never the end of the pause, can end a wait.
PAUSE_MS = 6000


def test_a_paused_redis_stalls_only_what_needs_it_for_one_timeout(tmp_path: Path) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(private_server("redis"))
        app = stack.enter_context(
            live_app(settings_for(tmp_path, **redis_values(server, timeout=PAUSED_TIMEOUT)))
        )
        ada = app.browser()
        ada.signup()
        stalled_clients = [("anonymous", app.client(), CSRF) for _ in range(4)]
        stalled_clients += [("session", app.session_client(ada), ME) for _ in range(2)]
        for kind, client, path in stalled_clients:  # every connection is open and warm
            assert ask(kind, client, path).status == 200
        health = app.client()
        assert ask("health", health, HEALTH).status == 200
        fail_open_before = app.metrics().total(FAIL_OPEN)

        controller = redis.Redis.from_url(server.redis_url(0), socket_timeout=2)
        stack.callback(controller.close)
        assert controller.client_pause(PAUSE_MS, all=True)
        paused_at = time.monotonic()
        assert not server.answers(timeout=0.1)  # the pause holds every client

        # Each stalled client asks twice (the app's Redis client drops a connection that
        # timed out, so the second ask also opens one while paused); /health meanwhile.
        with ThreadPoolExecutor(len(stalled_clients)) as pool:
            futures = [
                pool.submit(ask_repeatedly, 2, kind, client, path)
                for kind, client, path in stalled_clients
            ]
            probes: list[Answer] = []
            while not all(f.done() for f in futures):
                assert time.monotonic() - paused_at < PHASE_DEADLINE
                probes.append(ask("health", health, HEALTH))
                time.sleep(0.02)
            stalled = [answer for future in futures for answer in future.result()]
        stall_ended = time.monotonic()
        assert stall_ended - paused_at < PAUSE_MS / 1000, "the pause ended before the stall"

        # Unrelated requests were never held up.
        assert len(probes) >= 5  # /health was really asked during the stall
        assert all(p.status == 200 for p in probes)
        slowest = max(p.elapsed for p in probes)
        assert slowest < HEALTH_WITHIN, f"/health took {slowest:.3f}s during the pause"
        # Requests that need Redis waited one socket timeout, no more, then went on
        # without it (anonymous: the limit failed open) or answered 503 (sessions).
        for answer in stalled:
            assert PAUSED_TIMEOUT * 0.9 <= answer.elapsed < ONE_TIMEOUT_WITHIN, answer
            expected = 200 if answer.kind == "anonymous" else 503
            assert answer.status == expected, answer
        anonymous = [a for a in stalled if a.kind == "anonymous"]
        rise = app.metrics().total(FAIL_OPEN) - fail_open_before
        assert rise >= len(anonymous) == 8

        # Once the pause ends, Redis is used again: limits counted, sessions served.
        deadline = paused_at + PAUSE_MS / 1000 + PHASE_DEADLINE
        while not server.answers(timeout=0.1):
            assert time.monotonic() < deadline, "Redis stayed paused"
        recovered = stalled_clients[0][1].get(CSRF)
        assert recovered.status_code == 200 and "ratelimit-limit" in recovered.headers
        assert app.session_client(ada).get(ME).status_code == 200

        assert_no_server_errors(app)


# --- Memcached down as the cache --------------------------------------------------------


def memcached_hits(server: PrivateServer) -> int:
    client = MemcacheClient(("127.0.0.1", server.port), connect_timeout=1, timeout=1)
    try:
        return int(client.stats()[b"get_hits"])
    finally:
        client.close()


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_authenticated_requests_go_on_without_a_memcached_cache(tmp_path: Path, fault: str) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(private_server("memcached"))
        settings = settings_for(
            tmp_path,
            sessions={"backend": "memory"},
            cache={"backend": "memcached"},
            rate_limit={"backend": "memory"},
            memcached={
                "servers": server.address,
                "timeout_seconds": MEMCACHED_TIMEOUT,
                "connect_timeout_seconds": MEMCACHED_TIMEOUT,
            },
        )
        app = stack.enter_context(live_app(settings))
        ada = app.browser()
        credentials = ada.signup()
        readers = [("session", app.session_client(ada), ME) for _ in range(2)]
        readers += [("bearer", app.bearer_client(credentials), ME) for _ in range(2)]
        for kind, client, path in readers:
            assert ask(kind, client, path).status == 200
        assert memcached_hits(server) >= 1  # the user read is served from Memcached

        if fault == "killed":
            server.kill()  # refused at once
        else:
            server.freeze()  # one read timeout per request
            stack.callback(server.thaw)
        within = MEMCACHED_TIMEOUT + HANG_SLACK  # none hangs (the answers are the point)

        # Concurrent authenticated reads: served from the database, each bounded.
        # (Four at a time: Memcached calls run on the loop's default executor, which has
        # only cpu_count + 4 threads; more would queue behind each other's timeouts.)
        with ThreadPoolExecutor(len(readers)) as pool:
            futures = [
                pool.submit(ask_repeatedly, 3, kind, client, path) for kind, client, path in readers
            ]
            answers = [answer for future in futures for answer in future.result()]
        assert {a.kind for a in answers} == {"session", "bearer"}
        for answer in answers:
            assert answer.status == 200, answer
            assert answer.body["username"] == credentials.username
            assert answer.elapsed < within, answer

        # A change commits though the cache cannot be told, and is read back at once.
        renamed = ada.patch(ME, json={"username": f"{credentials.username}_2"})
        assert renamed.status_code == 200, renamed.text
        for kind, client, path in readers:
            again = ask(kind, client, path)
            assert again.status == 200 and again.body["username"] == f"{credentials.username}_2"

        ready = app.client().get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["cache"] != "ok"
        assert_no_server_errors(app)

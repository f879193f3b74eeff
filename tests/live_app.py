"""The whole app (`create_app(settings)`) served by uvicorn in a background thread, for
tests that need real sockets: clients that go away, servers killed under load."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from entrypoints.bootstrap.settings import Settings
from entrypoints.http.app import create_app
from tests.unit.http.profiles import TEST_SECRET
from tests.unit.http.support import Browser, Credentials, ResponseChecker

T = TypeVar("T")


def settings_for(tmp_path: Path, **values: Any) -> Settings:
    """Test settings (cheap hashing, mail in memory, a SQLite file) plus `values`."""
    base: dict[str, Any] = {
        "env": "test",
        "secret_key": TEST_SECRET,
        "passwords": {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True},
        "email": {"backend": "memory"},
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'portico.db'}", "auto_create": True},
    }
    return Settings(_env_file=None, **(base | values))  # type: ignore[call-arg]


class LiveApp:
    """`create_app(settings)` served by uvicorn in a background thread, on a socket bound
    here (so no other process can take the port between choosing and binding it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.checker = ResponseChecker(self.app)
        self.checker.operations()  # built once here, not raced by the client threads
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                self._noting_the_loop,
                interface="asgi3",
                lifespan="on",
                loop="asyncio",
                http="h11",
                ws="none",
                log_config=None,
                access_log=False,
                proxy_headers=False,
                server_header=False,
                timeout_graceful_shutdown=2,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    async def _noting_the_loop(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The server's loop, so `call` can run coroutines where the app's runtime lives.
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)

    def call(self, work: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """Run `work()` on the server's event loop (the runtime's services live there)."""
        assert self.loop is not None, "the app has not started"

        async def run() -> T:
            return await work()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the app did not start under uvicorn (see the captured log)")
            time.sleep(0.01)

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        assert not self._thread.is_alive(), "uvicorn did not stop"

    def client(self, **kwargs: Any) -> httpx.Client:
        """A client of its own (one connection, its own cookies), checked on every answer."""
        client = httpx.Client(
            base_url=self.base_url,
            timeout=5.0,
            event_hooks={"response": [self.checker]},
            **kwargs,
        )
        with self._lock:
            self._clients.append(client)
        return client

    def browser(self) -> Browser:
        # Browser needs only httpx's request() and cookie jar: any httpx.Client will do.
        return Browser(cast(TestClient, self.client()))

    def session_client(self, browser: Browser) -> httpx.Client:
        """Another client carrying `browser`'s session cookie (for a thread of its own)."""
        name = self.settings.session_cookie_name
        value = next(cookie.value for cookie in browser.jar if cookie.name == name)
        assert value
        return self.client(cookies={name: value})

    def bearer_client(self, credentials: Credentials) -> httpx.Client:
        signed_in = self.client().post(
            "/api/v1/auth/token",
            json={"email": credentials.email, "password": credentials.password},
        )
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
        return self.client(headers={"Authorization": f"Bearer {token}"})

    def metrics(self) -> Metrics:
        answer = self.client().get("/metrics")
        assert answer.status_code == 200
        return Metrics(answer.text)


@contextmanager
def live_app(settings: Settings) -> Iterator[LiveApp]:
    app = LiveApp(settings)
    app.start()
    try:
        yield app
    finally:
        app.stop()


class Metrics:
    """Samples of a Prometheus text exposition (only what these tests read)."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            head, value = line.rsplit(" ", 1)
            name, _, rest = head.partition("{")
            labels = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if "=" in part)
            self.samples.append((name, {k: v.strip('"') for k, v in labels.items()}, float(value)))

    def total(self, name: str, **labels: str) -> float:
        return sum(
            value
            for sample, found, value in self.samples
            if sample == name and all(found.get(k) == v for k, v in labels.items())
        )

    def statuses(self) -> set[str]:
        """Every status the app answered (its own request counter)."""
        return {
            found["status"]
            for sample, found, value in self.samples
            if sample == "portico_http_requests_total" and value > 0
        }

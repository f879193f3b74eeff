"""A local HTTP server for the fakes: an ASGI app served by uvicorn in a background
thread, on a port bound before it starts (so its address is known at once)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from starlette.types import ASGIApp


@contextmanager
def serving(
    app: ASGIApp, name: str, *, on_stop: Callable[[], None], lifespan: str = "off"
) -> Iterator[str]:
    """Serve `app`; yields its origin (`http://127.0.0.1:PORT`). `on_stop` runs before
    the server is asked to exit (let streaming handlers end). `lifespan="on"` runs the
    app's lifespan in the server's thread (a whole Portico app)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan=lifespan,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not (server.started or not thread.is_alive()) and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            pytest.fail(f"the {name} did not start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        on_stop()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), f"the {name} did not stop"

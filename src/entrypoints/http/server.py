"""Running the HTTP app under uvicorn (used by the CLI's `serve`)."""

from __future__ import annotations

from typing import Any

import uvicorn

from entrypoints.bootstrap.settings import Settings
from entrypoints.http.app import create_app


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the API alone until interrupted (`entrypoints.asgi.serve` adds the admin)."""
    run(create_app(settings), host=host, port=port)


def run(app: Any, host: str, port: int) -> None:
    """Serve `app` until interrupted.

    uvicorn's own proxy-header handling is off (it would trust 127.0.0.1 by default):
    the app trusts `X-Forwarded-For` only from `PORTICO_HTTP__TRUSTED_PROXIES`, so the
    client address (rate limits, audit, sessions list) is the same under any server.
    uvicorn's access log is off: the app logs every request itself (JSON, no secrets).
    uvloop and httptools are dependencies: "auto" picks them (and falls back to asyncio
    and h11 where they cannot be installed). No route speaks WebSocket.
    """
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="auto",
        http="auto",
        ws="none",
        proxy_headers=False,
        access_log=False,
        server_header=False,
        lifespan="on",
        log_config=None,
    )

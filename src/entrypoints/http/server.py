"""Running the HTTP app under uvicorn (used by the CLI's `serve`)."""

from __future__ import annotations

import uvicorn

from entrypoints.bootstrap.settings import Settings
from entrypoints.http.app import create_app


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    proxy_headers: bool = False,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Serve until interrupted.

    Proxy headers are off by default: the client address (sessions list, later rate
    limits) is the peer's. Behind a proxy, turn them on and name the proxy's addresses
    in `forwarded_allow_ips`. uvicorn's access log is off: the app logs every request
    itself (JSON, no secrets).
    """
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips if proxy_headers else None,
        access_log=False,
        server_header=False,
        lifespan="on",
        log_config=None,
    )

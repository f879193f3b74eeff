"""The one ASGI app a server runs: the API, and the admin panel at `/admin` when
`PORTICO_ADMIN__ENABLED` is true.

The two are separate Starlette apps with their own middleware (the API's CSRF layer,
rate limits and JSON problems never see `/admin`; the panel has its own gate, see
`entrypoints/admin/guard.py`). They share one process runtime: the API app's lifespan
starts it, and the panel reads it from the API app's state. SQLAdmin is imported only
when the panel is enabled.

Usage:
    app = create_asgi_app(Settings())      # uvicorn, see serve()
    with TestClient(create_asgi_app(settings)) as client: ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.bootstrap.settings import Settings
from entrypoints.http.app import create_app

if TYPE_CHECKING:
    from entrypoints.admin.app import AdminPanel

ADMIN_PREFIX = "/admin"


class PorticoApp:
    """Dispatches `/admin` and `/admin/...` to the panel, everything else to the API;
    the lifespan is the API's, with the panel started after it and closed before it."""

    def __init__(self, api: Any, admin: AdminPanel | None) -> None:
        self.api = api
        self.admin = admin
        self.state = api.state  # the runtime and the rest, as tests know them

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.admin is not None:
            await self.api(scope, receive, self._lifespan_send(send))
            return
        if self.admin is not None and scope["type"] == "http":
            path: str = scope["path"]
            if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
                await self.admin(scope, receive, send)
                return
        await self.api(scope, receive, send)

    def _lifespan_send(self, send: Send) -> Send:
        admin = self.admin
        assert admin is not None

        async def wrapped(message: Message) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                await admin.start()  # the runtime is up: the API's lifespan has set it
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await admin.close()
            await send(message)

        return wrapped


def create_asgi_app(settings: Settings) -> ASGIApp:
    """The API, composed with the admin panel when enabled."""
    api = create_app(settings)
    if not settings.admin.enabled:
        return api
    from entrypoints.admin.app import build_admin

    panel = build_admin(settings, lambda: api.state.runtime)
    return PorticoApp(api, panel)


def app_from_environment() -> ASGIApp:
    """The app as the environment configures it: `uvicorn --factory
    entrypoints.asgi:app_from_environment` (any ASGI server)."""
    return create_asgi_app(Settings())


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted (`portico serve`); see `entrypoints.http.server.run`."""
    from entrypoints.http.server import run

    run(create_asgi_app(settings), host=host, port=port)

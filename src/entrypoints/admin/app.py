"""`build_admin(settings, runtime_source)`: the panel as an ASGI app serving `/admin`.

SQLAdmin reads the tables through a small engine of its own (`PORTICO_ADMIN__POOL_SIZE`
connections), created when the process starts (`AdminPanel.start`) and disposed at
shutdown, so the panel's reads never wait behind the API's pool. Every write goes
through a core service reached in the runtime (see the views).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqladmin import Admin
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.admin.auth import PorticoAdminAuth
from entrypoints.admin.context import AdminContext, csrf_token
from entrypoints.admin.guard import AdminGuard
from entrypoints.admin.views import ALL_VIEWS
from entrypoints.bootstrap.runtime import Runtime
from entrypoints.bootstrap.settings import Settings

BASE_PATH = "/admin"
_HERE = Path(__file__).parent


class AdminPanel:
    """The panel's ASGI app and its lifecycle (`start` after the runtime, `close` at the end)."""

    def __init__(self, app: ASGIApp, admin: Admin, context: AdminContext) -> None:
        self.app = app
        self.admin = admin
        self.context = context
        self._engine: AsyncEngine | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    async def start(self) -> None:
        from adapters.sqlalchemy.engine import READ_ONLY, create_engine

        db = self.context.settings.database
        self._engine = create_engine(
            db.url,
            pool_size=self.context.settings.admin.pool_size,
            max_overflow=0,
            pool_timeout=db.pool_timeout_seconds,
            connect_timeout=db.connect_timeout_seconds,
            statement_timeout_ms=db.statement_timeout_ms,
        )
        # The panel only reads (writes go through the services' units of work): on
        # SQLite its transactions begin deferred, beside the one writer, never queueing.
        self.admin.session_maker.configure(bind=self._engine.execution_options(**READ_ONLY))

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def view_identities(self) -> list[str]:
        """The model views' URL segments (tests walk every one)."""
        return [v.identity for v in self.admin.views if getattr(v, "is_model", False)]


def build_admin(
    settings: Settings,
    runtime_source: Callable[[], Runtime | None],
) -> AdminPanel:
    context = AdminContext(settings, runtime_source)
    host = Starlette()
    middlewares = [Middleware(AdminGuard, context=context, base_path=BASE_PATH)]
    if settings.http.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        # Outermost: the allow-list sees the client, not the proxy.
        middlewares.insert(
            0, Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.http.trusted_proxies)
        )
    admin = Admin(
        host,
        session_maker=async_sessionmaker(class_=AsyncSession, expire_on_commit=False),
        base_url=BASE_PATH,
        title="Portico admin",
        templates_dir=str(_HERE / "templates"),
        middlewares=middlewares,
        authentication_backend=PorticoAdminAuth(context, BASE_PATH),
    )
    admin.portico_context = context  # type: ignore[attr-defined]  # read by the views
    admin.templates.env.globals["admin_csrf_token"] = _template_token
    admin.admin.router.routes.insert(
        0, Mount("/portico", app=StaticFiles(directory=_HERE / "static"), name="portico-static")
    )
    for view in ALL_VIEWS:
        # A subclass per panel: SQLAdmin keeps its references on the class.
        admin.add_view(type(view.__name__, (view,), {}))
    return AdminPanel(host, admin, context)


def _template_token(request: Request) -> str:
    return csrf_token(request)

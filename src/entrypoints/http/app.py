"""`create_app(settings)`: the Starlette app, its middleware stack and its lifespan.

Usage:
    app = create_app(Settings())                      # uvicorn, see server.serve()
    with TestClient(create_app(settings)) as client:  # tests: runs the lifespan

The lifespan calls `start_runtime(settings, container)` and keeps the result on
`app.state.runtime` until shutdown. Everything else on `app.state` (settings, metrics,
pre-session CSRF and OAuth state signers, spec) is per app, so several apps can live in one process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from entrypoints.bootstrap.otel_imports import opentelemetry_imports
from entrypoints.bootstrap.runtime import start_runtime
from entrypoints.bootstrap.settings import Settings
from entrypoints.http.access_log import AccessLog, TraceIds
from entrypoints.http.cookies import PreSessionTokens, pre_session_cookie_name
from entrypoints.http.docs import DOCS_CSP, docs_routes
from entrypoints.http.endpoints import Access, Endpoint
from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.fake_gateway import FAKE_GATEWAY_PREFIX, fake_gateway_routes
from entrypoints.http.metrics import HttpMetrics
from entrypoints.http.metrics_access import MetricsAccess
from entrypoints.http.middleware.authentication import AuthenticationMiddleware
from entrypoints.http.middleware.body_limit import BodyLimitMiddleware
from entrypoints.http.middleware.csrf import CsrfMiddleware
from entrypoints.http.middleware.rate_limit import RateLimitMiddleware, RateLimitPolicy
from entrypoints.http.middleware.request_context import RequestContextMiddleware
from entrypoints.http.middleware.security_headers import API_CSP, SecurityHeaders
from entrypoints.http.oauth_cookie import OAuthStateCookies
from entrypoints.http.openapi import OPENAPI_PATH, build_routes, new_spec, openapi_document
from entrypoints.http.routes import ALL_GROUPS

if TYPE_CHECKING:
    from entrypoints.bootstrap.container import Container


class PorticoStarlette(Starlette):
    """Starlette without its outermost `ServerErrorMiddleware`: ours,
    `RequestContextMiddleware`, is outermost and already answers an unhandled exception
    with a 500 problem and a log line; Starlette's would only wrap every send once more.
    Exception handlers keyed by 500 or `Exception` (which only that layer would run)
    are refused."""

    def build_middleware_stack(self) -> ASGIApp:
        if any(key in (500, Exception) for key in self.exception_handlers):
            raise ValueError("unhandled exceptions are RequestContextMiddleware's to answer")
        handlers = dict(self.exception_handlers)
        stack = [*self.user_middleware, Middleware(ExceptionMiddleware, handlers=handlers)]
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(stack):
            app = cls(app, *args, **kwargs)
        return app


# Probes and scrapes: frequent, and nothing to see in a trace.
UNTRACED_PATHS = ("/health", "/ready", "/metrics")


def all_endpoints() -> list[Endpoint]:
    return [endpoint for group in ALL_GROUPS for endpoint in group.endpoints]


def build_middleware(
    settings: Settings,
    *,
    metrics: HttpMetrics,
    access_log: AccessLog,
    pre_session_tokens: PreSessionTokens,
    pre_session_paths: list[str],
    docs_policy: str,
    public_paths: list[str] | None = None,
    exempt_paths: list[str] | None = None,
    csrf_exempt_prefixes: list[str] | None = None,
) -> list[Middleware]:
    """The stack, outermost first (ARCHITECTURE.md section 6, with two changes that pay
    for themselves on every request: the security headers are added by the outermost
    layer in its one send wrapper, and rate limits run just inside authentication, which
    counts the general limit in the caller's read: see `middleware/rate_limit.py`).

    `public_paths` (the `PUBLIC` endpoints) need no CSRF token; bearer tokens are not
    looked at there nor on the `pre_session_paths` (see `entrypoints/http/bearer.py`).
    `exempt_paths` (health, readiness, metrics) are not rate limited.
    """
    public = list(public_paths or ())
    limits = RateLimitPolicy(settings.rate_limit, exempt_paths=exempt_paths or ())
    stack = [
        # Request id, security headers, access log and metrics: one send wrapper for all.
        Middleware(
            RequestContextMiddleware,
            metrics=metrics,
            access_log=access_log,
            security_headers=SecurityHeaders(hsts=settings.cookie_secure, docs_csp=docs_policy),
        ),
        Middleware(BodyLimitMiddleware, max_body_bytes=settings.http.max_body_bytes),
        Middleware(
            AuthenticationMiddleware,
            cookie_name=settings.session_cookie_name,
            identity_free_paths=[*public, *pre_session_paths],
            general_limit=limits.general_limit,
        ),
        # Inside authentication: limits are per user and per tier (see its module doc).
        Middleware(
            RateLimitMiddleware,
            policy=limits,
            metrics=metrics,
        ),
        Middleware(
            CsrfMiddleware,
            pre_session_paths=pre_session_paths,
            pre_session_cookie=pre_session_cookie_name(settings),
            pre_session_tokens=pre_session_tokens,
            # A front end allowed to read credentialed answers (CORS) may also send
            # unsafe requests; it still needs the session's CSRF token.
            trusted_origins=[
                *settings.http.trusted_origins,
                *(o for o in settings.http.cors_origins if o != "*"),
            ],
            exempt_paths=public,
            exempt_prefixes=csrf_exempt_prefixes or (),
        ),
    ]
    if settings.http.cors_origins:
        # Imported only when configured. Inside the request context (request id,
        # headers, access log) and outside everything that could refuse a preflight.
        from entrypoints.http.middleware.cors import cors_middleware

        cors = cors_middleware(settings.http.cors_origins)
        if cors is not None:
            stack.insert(1, cors)
    if settings.tracing.enabled:
        # Imported only when enabled. Outside everything, so the server span covers the
        # whole request and every log line (the access log's too) is written inside it;
        # inside the proxy headers (below), so the span records the real client.
        from entrypoints.bootstrap.tracing_http import HttpTracing

        stack.insert(0, Middleware(HttpTracing, excluded_paths=UNTRACED_PATHS))
    if settings.http.trusted_proxies:
        # Outermost, so every layer (rate limits, audit, sessions list) sees the client.
        stack.insert(
            0, Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.http.trusted_proxies)
        )
    return stack


def _trace_ids(settings: Settings) -> TraceIds | None:
    """What gives the access log its trace ids: nothing (and no import) with tracing off."""
    if not settings.tracing.enabled:
        return None
    from entrypoints.bootstrap.tracing import current_trace_ids

    return current_trace_ids


def create_app(settings: Settings, *, container: Container | None = None) -> Starlette:
    opentelemetry_imports(settings.tracing)
    endpoints = all_endpoints()
    spec = new_spec(settings)
    routes = build_routes(spec, endpoints)
    document: dict[str, Any] = {}

    def api_document() -> dict[str, Any]:
        """The OpenAPI document, built on first use (the app's routes are all known)."""
        if not document:
            document.update(
                openapi_document(
                    spec,
                    password_min_length=settings.passwords.min_length,
                    event_streams=frozenset(
                        e.handler.__name__ for e in endpoints if e.event_stream
                    ),
                )
            )
        return document

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(api_document())

    routes.append(Route(OPENAPI_PATH, openapi_json, methods=["GET"], include_in_schema=False))
    docs_policy = API_CSP
    if settings.http.docs_enabled:
        routes.extend(docs_routes(OPENAPI_PATH, "Portico API"))
        docs_policy = DOCS_CSP

    fake_gateway = settings.payments.backend == "fake" and not settings.is_production
    if fake_gateway:
        routes.extend(fake_gateway_routes())

    metrics = HttpMetrics()
    access_log = AccessLog(trace_ids=_trace_ids(settings))
    pre_session_tokens = PreSessionTokens(settings.secret())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await start_runtime(settings, container)
        app.state.runtime = runtime
        try:
            yield
        finally:
            access_log.flush()
            app.state.runtime = None
            await runtime.aclose()

    app = PorticoStarlette(
        routes=routes,
        middleware=build_middleware(
            settings,
            metrics=metrics,
            access_log=access_log,
            pre_session_tokens=pre_session_tokens,
            pre_session_paths=[e.path for e in endpoints if e.access is Access.PRE_SESSION],
            docs_policy=docs_policy,
            public_paths=[e.path for e in endpoints if e.access is Access.PUBLIC],
            exempt_paths=[e.path for e in endpoints if not e.rate_limited],
            csrf_exempt_prefixes=[FAKE_GATEWAY_PREFIX] if fake_gateway else None,
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # strict paths: "/users/me/" is a 404, not a redirect
    app.state.settings = settings
    app.state.runtime = None
    app.state.metrics = metrics
    app.state.metrics_access = MetricsAccess.from_settings(settings.metrics)
    app.state.access_log = access_log
    app.state.pre_session_tokens = pre_session_tokens
    app.state.oauth_state_cookies = OAuthStateCookies(
        settings.secret(), max_age_seconds=settings.oauth.state_max_age_seconds
    )
    app.state.spec = spec
    app.state.api_document = api_document
    spec.app = app  # route discovery for the document (spec.register would add its own pages)
    return app

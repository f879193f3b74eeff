"""The HTTP server span: OpenTelemetry's ASGI middleware, outermost in the app.

Added to the middleware stack only with tracing enabled (`entrypoints/http/app.py`), so
with tracing off a request pays nothing and OpenTelemetry is never imported.

- The tracer provider is the runtime's (`Runtime.tracing`, built in the lifespan, after
  any fork): the OpenTelemetry middleware is built at the first request of each runtime.
  Before the runtime starts, requests pass untraced.
- A request's span is named `METHOD /route/{template}` (the matched route, never the
  raw path with its ids); the name is set once the router has matched, and `http.route`
  with it. Unmatched requests keep the method alone.
- Probes and scrapes (`excluded_paths`: `/health`, `/ready`, `/metrics`) are not traced.
- No span per `receive`/`send` message: a streamed reply would make one per chunk.
- An incoming W3C `traceparent` makes the span its child (the sampling decision follows
  it: parent-based).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.metrics import NoOpMeterProvider
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.bootstrap.tracing import Tracing


def _method_only(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # The starting name; `_NameByRoute` renames the span once the route is known.
    return str(scope.get("method") or "HTTP"), {}


def _drop_query(span: trace.Span, scope: dict[str, Any]) -> None:
    """The query string stays out of the span (an OAuth callback's code and state ride
    in it); the path is enough and the route names the span."""
    if not scope.get("query_string"):
        return
    attributes = getattr(span, "attributes", None) or {}
    url = attributes.get("http.url")
    if isinstance(url, str):
        span.set_attribute("http.url", url.partition("?")[0])
    target = attributes.get("http.target")
    if isinstance(target, str):
        span.set_attribute("http.target", target.partition("?")[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "[redacted]")


class _NameByRoute:
    """Just inside the server span: when the answer starts (the span ends with its last
    byte), the router has put the matched route in the scope, and the span takes its
    template for a name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        named = False

        def name_by_route() -> None:
            nonlocal named
            named = True
            template = getattr(scope.get("route"), "path", None)
            if isinstance(template, str):
                span.update_name(f"{scope['method']} {template}")
                span.set_attribute("http.route", template)

        async def send_named(message: Message) -> None:
            if not named and message["type"] == "http.response.start":
                name_by_route()
            await send(message)

        try:
            await self.app(scope, receive, send_named)
        finally:
            if not named:  # no answer started (an exception): still open
                name_by_route()


class HttpTracing:
    """Pure ASGI: traced requests go through OpenTelemetry's middleware, the rest
    straight to the app."""

    def __init__(self, app: ASGIApp, *, excluded_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.excluded_paths = frozenset(excluded_paths)
        self._tracing: Tracing | None = None
        self._traced: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded_paths:
            await self.app(scope, receive, send)
            return
        runtime = getattr(scope["app"].state, "runtime", None)
        tracing: Tracing | None = getattr(runtime, "tracing", None)
        if tracing is None:
            await self.app(scope, receive, send)
            return
        if tracing is not self._tracing:
            self._traced = OpenTelemetryMiddleware(
                _NameByRoute(self.app),
                default_span_details=_method_only,
                server_request_hook=_drop_query,
                tracer_provider=tracing.provider,
                # HTTP metrics are Prometheus' (`/metrics`): a no-op meter.
                meter_provider=NoOpMeterProvider(),
                exclude_spans=["receive", "send"],
            )
            self._tracing = tracing
        assert self._traced is not None
        await self._traced(scope, receive, send)

"""Outermost layer: request id, security headers, access log, metrics, and the
last-resort 500.

- `X-Request-ID` is taken from the request when it is a short token of safe characters,
  generated otherwise, bound to every log line of the request and echoed in the answer.
- The security headers (`security_headers.SecurityHeaders`) on every answer.
- One JSON access-log line per request: method, route template, status, duration,
  request id (and the user id when authenticated). Never paths with ids or query strings,
  cookies, tokens or bodies.
- An exception nothing else handled becomes a 500 problem without details; the log names
  the exception's type and where it was raised, not its message (which could carry SQL
  or a secret) and no stack trace.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.bootstrap.logging import REQUEST_ID
from entrypoints.http.access_log import AccessLog
from entrypoints.http.context import scope_principal
from entrypoints.http.errors import internal_error_response
from entrypoints.http.metrics import HttpMetrics
from entrypoints.http.middleware.security_headers import SecurityHeaders

log = structlog.get_logger("portico.http")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return text if _REQUEST_ID.match(text) else None
    return None


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown"
    module = tb.tb_frame.f_globals.get("__name__", "?")
    return f"{module}:{tb.tb_lineno}"


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        security_headers: SecurityHeaders,
        access_log: AccessLog,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.security_headers = security_headers
        self.access_log = access_log
        # Bound at the first request, once logging is configured (the runtime's start
        # does it): one logger for the app's life.
        self._log: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._log is None:
            self._log = log.bind()

        request_id = _incoming_request_id(scope) or os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        started_response = False
        request_id_header = (b"x-request-id", request_id.encode("ascii"))
        path: str = scope["path"]

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                headers = self.security_headers.apply(path, message.get("headers", ()))
                headers.append(request_id_header)
                message["headers"] = headers
            await send(message)

        bound = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            self._log.error(
                "unhandled_exception",
                request_id=request_id,
                error_type=type(exc).__name__,
                where=_where(exc),
                route=route_template(scope),
            )
            if not started_response:
                await internal_error_response()(scope, receive, send_with_id)
            status = 500
        finally:
            duration = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.observe(scope["method"], route, status, duration)
            principal = scope_principal(scope)
            self.access_log.request(
                request_id=request_id,
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(duration * 1000, 2),
                user_id=principal.user.id if principal else None,
            )
            REQUEST_ID.reset(bound)

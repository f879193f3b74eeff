"""CORS for browser front ends on other origins (`PORTICO_HTTP__CORS_ORIGINS`).

Only built when origins are configured (an app without them has no CORS layer at all).
It sits just inside the request-context layer, so a preflight (`OPTIONS` with `Origin`
and `Access-Control-Request-Method`) is answered here, before authentication, rate
limits and CSRF: a preflight carries no credentials and changes nothing.

Starlette's `CORSMiddleware` does the work, with two differences:
- An origin that is not listed gets no CORS header at all (Starlette adds
  `Access-Control-Allow-Credentials` and the exposed headers to every answer that has an
  `Origin`); its preflight is a 400, its other requests pass on as if same-origin
  (CSRF then refuses unsafe ones from a browser).
- Credentials are allowed only for listed origins: with `*` in the list, any origin is
  allowed without credentials (`Access-Control-Allow-Origin: *`), never with them.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

# What a front end's script sends: JSON bodies, bearer tokens, the CSRF token, its own
# request id (for correlating logs).
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-CSRF-Token", "X-Request-ID")
# What a front end's script may read besides the CORS-safelisted response headers.
EXPOSED_HEADERS = (
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Retry-After",
    "WWW-Authenticate",
    "Location",
)
ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Browsers cap this (Chrome at 2 h); a preflight per origin and path every 10 minutes.
PREFLIGHT_MAX_AGE_SECONDS = 600


def _first(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class ListedOriginsCors(CORSMiddleware):
    """`CORSMiddleware` that says nothing at all to origins it does not list."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _first(scope, b"origin")
        if origin is None or self.is_allowed_origin(origin):
            await super().__call__(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and _first(scope, b"access-control-request-method"):
            refused = PlainTextResponse(
                "Disallowed CORS origin", status_code=400, headers={"Vary": "Origin"}
            )
            await refused(scope, receive, send)
            return

        async def send_varying(message: Message) -> None:
            # The answer depends on Origin: shared caches must not serve it across origins.
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"vary", b"Origin")]
            await send(message)

        await self.app(scope, receive, send_varying)


def cors_middleware(origins: Sequence[str]) -> Middleware | None:
    """The CORS layer for `origins` (normalised by the settings), or None when empty."""
    if not origins:
        return None
    wildcard = "*" in origins
    return Middleware(
        ListedOriginsCors,
        allow_origins=["*"] if wildcard else list(origins),
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=not wildcard,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )

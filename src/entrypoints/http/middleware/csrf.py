"""CSRF protection for cookie-authenticated requests (OWASP: synchronizer token + Origin).

Unsafe methods (anything but GET, HEAD, OPTIONS, TRACE):
- with a session: `X-CSRF-Token` must equal the session's CSRF token (constant-time);
- on the pre-session form endpoints (login, registration), with or without a session:
  `X-CSRF-Token` must equal the signed `portico_csrf` cookie from `GET /api/v1/auth/csrf`
  (double submit), or the session's token when a session is present;
- in both cases, an `Origin` header, when present, must be the request's own origin
  (`scheme://host` from the Host header) or one of `settings.http.trusted_origins`; with
  no Origin, `Sec-Fetch-Site: cross-site` is refused.
Anonymous requests elsewhere pass (they carry no ambient authority; routes that need a
user answer 401), and so do requests authenticated by a bearer token (a browser never
attaches one by itself, so it is no ambient authority either) and the `exempt_paths`
(the `PUBLIC` token endpoints: credentials in the body, no cookie set or used).
A failure is a 403 problem `csrf_failed`, before any route runs, so
nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from core.shared.clock import Clock
from core.shared.hashing import constant_time_equals
from entrypoints.http.context import scope_principal
from entrypoints.http.cookies import PreSessionTokens, read_cookie
from entrypoints.http.errors import problem_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def _headers(scope: Scope) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for key, value in scope.get("headers", ()):
        if key in (b"origin", b"host", b"cookie", b"x-csrf-token", b"sec-fetch-site"):
            found.setdefault(key, value.decode("latin-1"))
    return found


def _normalise_origin(origin: str) -> str:
    origin = origin.strip().lower().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    default = _DEFAULT_PORTS.get(scheme)
    if sep and default and rest.endswith(default):
        rest = rest[: -len(default)]
    return f"{scheme}{sep}{rest}"


class CsrfMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        pre_session_paths: Iterable[str],
        pre_session_cookie: str,
        pre_session_tokens: PreSessionTokens,
        trusted_origins: Iterable[str] = (),
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.exempt_paths = frozenset(exempt_paths)
        self.pre_session_paths = frozenset(pre_session_paths)
        self.pre_session_cookie = pre_session_cookie
        self.tokens = pre_session_tokens
        self.trusted_origins = frozenset(_normalise_origin(o) for o in trusted_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or scope["path"] in self.exempt_paths
        ):
            await self.app(scope, receive, send)
            return
        principal = scope_principal(scope)
        pre_session = scope["path"] in self.pre_session_paths
        if principal is not None and principal.is_bearer and not pre_session:
            await self.app(scope, receive, send)
            return
        if (principal is not None or pre_session) and not self._passes(scope, pre_session):
            await problem_response(
                403, "csrf_failed", "The CSRF token or the request's origin is not valid."
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _passes(self, scope: Scope, pre_session: bool) -> bool:
        headers = _headers(scope)
        if not self._origin_allowed(scope, headers):
            return False
        sent = headers.get(b"x-csrf-token", "")
        if not sent:
            return False
        principal = scope_principal(scope)
        if (
            principal is not None
            and principal.session is not None
            and constant_time_equals(sent, principal.session.csrf_token)
        ):
            return True
        if pre_session:
            cookie = read_cookie(headers.get(b"cookie"), self.pre_session_cookie)
            if cookie and constant_time_equals(sent, cookie):
                runtime = getattr(scope["app"].state, "runtime", None)
                return runtime is not None and self.tokens.verify(cookie, runtime.get(Clock).now())
        return False

    def _origin_allowed(self, scope: Scope, headers: dict[bytes, str]) -> bool:
        origin = headers.get(b"origin")
        if origin is None:
            return headers.get(b"sec-fetch-site", "").lower() != "cross-site"
        normalised = _normalise_origin(origin)
        if normalised in self.trusted_origins:
            return True
        host = headers.get(b"host")
        if not host:
            return False
        own = _normalise_origin(f"{scope.get('scheme', 'http')}://{host}")
        return constant_time_equals(normalised, own)

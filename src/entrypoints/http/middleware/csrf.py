"""CSRF protection: every unsafe request a browser sends is checked; what no browser sends
needs nothing.

**Who is a browser.** A request is a browser's when it carries a cookie, an `Origin` or a
`Sec-Fetch-Site` header. Every current browser sends `Origin` on cross-origin POST, PUT,
PATCH and DELETE requests and `Sec-Fetch-Site` on every request (Chrome 76, Firefox 90,
Safari 16.4), and a page can neither set nor remove them (forbidden header names). So a
request forged by another site's page always carries one of them, and a request with
none of the three (and no cookie, hence no session) is a mobile app, a script or a server:
there is no ambient authority in it for a third party to borrow. It passes without a
token; that is how apps register and sign in without a cookie jar. A browser too old to
send either header still cannot forge a body here: a form cannot send `application/json`
(anything else is 415) and a script cannot without a CORS preflight, which Portico grants
only to the origins of `PORTICO_HTTP__CORS_ORIGINS` (trusted here too).

**What a browser must show** on unsafe methods (anything but GET, HEAD, OPTIONS, TRACE):
1. Same origin, on every route: an `Origin` in `settings.http.trusted_origins` passes (a
   front end elsewhere, `same-site` or `cross-site` to the browser); otherwise
   `Sec-Fetch-Site`, when sent, must be `same-origin` or `none`, and `Origin`, when sent,
   must be the request's own (`scheme://host` of the Host header). Both are checked
   when both are sent. This holds for anonymous requests and the token endpoints too: no
   other site's page may make a browser post anything here.
2. A token where there is something to protect: with a session (a session cookie is
   ambient authority), `X-CSRF-Token` must equal the session's CSRF token; on the
   pre-session routes (login, registration, password reset, email verification), it must
   equal the signed `portico_csrf` cookie from `GET /api/v1/auth/csrf` (double submit),
   or the session's token when a session is present. A browser's request without a cookie
   still needs the pre-session token, even one saying `Sec-Fetch-Site: same-origin` or
   `none`: header metadata decides whose request it is, not that the page meant it, and a
   front end fetches the token anyway. One rule for everything a browser sends.

Not checked beyond the origin: the `exempt_paths` (the `PUBLIC` token endpoints:
credentials in the body, no cookie set or used), the `exempt_prefixes` (the fake payment
gateway's pages, whose unguessable URL is the capability), and anonymous requests to session routes
(they answer 401). Bearer-authenticated requests pass (a browser never attaches an
Authorization header by itself). A failure is a 403 problem `csrf_failed`, before any
route runs, so nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from core.shared.clock import Clock
from core.shared.hashing import constant_time_equals
from entrypoints.http.context import Principal, scope_principal
from entrypoints.http.cookies import PreSessionTokens, read_cookie
from entrypoints.http.errors import problem_response
from entrypoints.origins import normalise_origin, same_origin

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_READ = (b"origin", b"host", b"cookie", b"x-csrf-token", b"sec-fetch-site")


def _headers(scope: Scope) -> dict[bytes, str]:
    """The headers this check reads (the first of each), cookies joined."""
    found: dict[bytes, str] = {}
    cookies: list[str] = []
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            cookies.append(value.decode("latin-1"))
        elif key in _READ:
            found.setdefault(key, value.decode("latin-1"))
    if any(cookie.strip() for cookie in cookies):
        found[b"cookie"] = "; ".join(cookies)
    return found


def sent_by_a_browser(headers: dict[bytes, str]) -> bool:
    """A cookie, an Origin or a Sec-Fetch-Site: what every browser's forged request has."""
    return b"cookie" in headers or b"origin" in headers or b"sec-fetch-site" in headers


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
        exempt_prefixes: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.exempt_paths = frozenset(exempt_paths)
        self.exempt_prefixes = tuple(exempt_prefixes)
        self.pre_session_paths = frozenset(pre_session_paths)
        self.pre_session_cookie = pre_session_cookie
        self.tokens = pre_session_tokens
        self.trusted_origins = frozenset(normalise_origin(o) for o in trusted_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        if self._passes(scope):
            await self.app(scope, receive, send)
            return
        await problem_response(
            403, "csrf_failed", "The CSRF token or the request's origin is not valid."
        )(scope, receive, send)

    def _passes(self, scope: Scope) -> bool:
        headers = _headers(scope)
        if not sent_by_a_browser(headers):
            return True
        principal = scope_principal(scope)
        path = scope["path"]
        pre_session = path in self.pre_session_paths
        if principal is not None and principal.is_bearer and not pre_session:
            return True
        if not self._origin_allowed(scope, headers):
            return False
        if pre_session:
            return self._token_matches(scope, headers, principal)
        if principal is None or path in self.exempt_paths:
            return True
        if self.exempt_prefixes and path.startswith(self.exempt_prefixes):
            return True
        return self._token_matches(scope, headers, principal)

    def _token_matches(
        self, scope: Scope, headers: dict[bytes, str], principal: Principal | None
    ) -> bool:
        sent = headers.get(b"x-csrf-token", "")
        if not sent:
            return False
        if (
            principal is not None
            and principal.session is not None
            and constant_time_equals(sent, principal.session.csrf_token)
        ):
            return True
        if scope["path"] in self.pre_session_paths:
            cookie = read_cookie(headers.get(b"cookie"), self.pre_session_cookie)
            if cookie and constant_time_equals(sent, cookie):
                runtime = getattr(scope["app"].state, "runtime", None)
                return runtime is not None and self.tokens.verify(cookie, runtime.get(Clock).now())
        return False

    def _origin_allowed(self, scope: Scope, headers: dict[bytes, str]) -> bool:
        origin = headers.get(b"origin")
        if origin is not None and normalise_origin(origin) in self.trusted_origins:
            return True
        return same_origin(scope, origin, headers.get(b"sec-fetch-site"), headers.get(b"host"))

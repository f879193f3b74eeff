"""The admin panel's gate, one pure ASGI layer in front of SQLAdmin.

In order, for every request under `/admin`:
1. **Address.** With `PORTICO_ADMIN__ALLOWED_NETWORKS` set, a client outside those
   networks gets a 403 page (the client is the peer, or the `X-Forwarded-For` address
   when the peer is one of `PORTICO_HTTP__TRUSTED_PROXIES`; see `entrypoints.asgi`).
2. **Who.** The Portico session cookie (the API's, same store) is looked up with
   `AuthenticationService.authenticate`; the result is left in the scope for the
   SQLAdmin authentication backend (`auth.py`). A signed-in user who is not a superuser
   gets a 403 page on every admin URL but the login page (to sign in as someone else).
   A store that is down is a 503 page.
3. **CSRF**, on every unsafe method (SQLAdmin has no protection of its own): the request
   must be same-origin (`Origin`, when sent, is the request's own origin;
   `Sec-Fetch-Site`, when sent, is `same-origin` or `none`) and carry the token bound
   to the session (`X-CSRF-Token` or a `csrf_token` form field: the session's own CSRF
   token). The login form, before any session, uses a double-submit token: a random
   value in an HttpOnly cookie and in the form. Anything else is a 403 page, before
   SQLAdmin runs, so nothing changes.

Every answer gets the panel's security headers (a CSP allowing the panel's own scripts
and styles, no framing, no caching).
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable
from html import escape

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.identity.authentication import Authenticated
from core.identity.service import AuthenticationService
from core.shared.errors import DomainError
from core.shared.hashing import constant_time_equals
from entrypoints.admin.context import (
    CALLER_KEY,
    CSRF_FIELD,
    CSRF_HEADER,
    CSRF_KEY,
    AdminContext,
)
from entrypoints.origins import same_origin
from entrypoints.session_cookie import host_cookie_name, looks_like_token, read_cookie, set_cookie

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
LOGIN_COOKIE = "portico_admin_login"
LOGIN_COOKIE_MAX_AGE_SECONDS = 2 * 60 * 60
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

# The panel's own files only; SQLAdmin's widgets set inline styles.
ADMIN_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in scope.get("headers", ()):
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        if name == "cookie":
            cookies.append(text)
        else:
            found.setdefault(name, text)
    if cookies:
        found["cookie"] = "; ".join(cookies)
    return found


def _same_origin(scope: Scope, headers: dict[str, str]) -> bool:
    return same_origin(
        scope, headers.get("origin"), headers.get("sec-fetch-site"), headers.get("host")
    )


def error_page(status: int, title: str, detail: str) -> Response:
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{status} {escape(title)}</title></head><body>"
        f"<h1>{status} {escape(title)}</h1><p>{escape(detail)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status)


class AdminGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        context: AdminContext,
        base_path: str = "/admin",
        open_paths: Iterable[str] = ("/login", "/logout", "/statics/", "/portico/"),
    ) -> None:
        self.app = app
        self.context = context
        settings = context.settings
        self.base_path = base_path.rstrip("/")
        self.login_path = f"{self.base_path}/login"
        self.logout_path = f"{self.base_path}/logout"
        self.open_prefixes = tuple(f"{self.base_path}{p}" for p in open_paths)
        networks = settings.admin.allowed_networks
        self.networks = (
            None
            if networks is None
            else tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        )
        self.cookie_name = settings.session_cookie_name
        self.login_cookie = host_cookie_name(settings, LOGIN_COOKIE)
        self.max_body = settings.http.max_body_bytes
        self.security_headers = [
            ("content-security-policy", ADMIN_CSP),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
            ("cross-origin-opener-policy", "same-origin"),
            ("cache-control", "no-store"),
        ]
        if settings.cookie_secure:
            self.security_headers.append(
                ("strict-transport-security", "max-age=63072000; includeSubDomains")
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._with_security_headers(send)
        if not self._address_allowed(scope):
            await error_page(403, "Forbidden", "This address may not use the admin panel.")(
                scope, receive, send
            )
            return
        headers = _headers(scope)
        try:
            found = await self._caller(headers)
        except DomainError:
            await error_page(503, "Unavailable", "The session store cannot be reached.")(
                scope, receive, send
            )
            return
        state = scope.setdefault("state", {})
        state[CALLER_KEY] = found
        path: str = scope["path"]
        if (
            found is not None
            and not found.user.is_superuser
            and not path.startswith(self.open_prefixes)
        ):
            await error_page(403, "Forbidden", "The admin panel is for superusers only.")(
                scope, receive, send
            )
            return
        if path == self.logout_path and not _same_origin(scope, headers):
            # SQLAdmin's logout is a GET link: another site's page may not end the session.
            await error_page(403, "Forbidden", "Cross-site requests are refused.")(
                scope, receive, send
            )
            return
        expected, new_login_token = self._expected_token(path, headers, found)
        state[CSRF_KEY] = expected or new_login_token or ""
        if scope["method"] not in SAFE_METHODS:
            if not _same_origin(scope, headers):
                await error_page(403, "Forbidden", "Cross-site requests are refused.")(
                    scope, receive, send
                )
                return
            sent, receive = await self._sent_token(scope, receive, headers)
            if not expected or not sent or not constant_time_equals(sent, expected):
                await error_page(403, "Forbidden", "The form's CSRF token is missing or stale.")(
                    scope, receive, send
                )
                return
        if new_login_token is not None:
            send = self._with_login_cookie(send, new_login_token)
        await self.app(scope, receive, send)

    # --- the steps ------------------------------------------------------------------

    def _address_allowed(self, scope: Scope) -> bool:
        if self.networks is None:
            return True
        client = scope.get("client")
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def _caller(self, headers: dict[str, str]) -> Authenticated | None:
        token = read_cookie(headers.get("cookie"), self.cookie_name)
        if not looks_like_token(token):
            return None
        assert token is not None
        return await self.context.get(AuthenticationService).authenticate(token)

    def _expected_token(
        self, path: str, headers: dict[str, str], found: Authenticated | None
    ) -> tuple[str | None, str | None]:
        """The token this request's unsafe method must carry, and a new login token to
        set as a cookie (the login page, before any session)."""
        if found is not None:
            return found.session.csrf_token, None
        if path != self.login_path:
            return None, None
        cookie = read_cookie(headers.get("cookie"), self.login_cookie)
        if looks_like_token(cookie):
            return cookie, None
        fresh = secrets.token_urlsafe(32)
        return None, fresh

    async def _sent_token(
        self, scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[str | None, Receive]:
        """The token from the header, else from the form body (read once and replayed
        to SQLAdmin)."""
        sent = headers.get(CSRF_HEADER)
        if sent:
            return sent, receive
        content_type = headers.get("content-type", "").lower()
        if not content_type.startswith(_FORMS):
            return None, receive
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body.extend(message.get("body", b""))
            if len(body) > self.max_body:
                return None, receive
            if not message.get("more_body", False):
                break
        replay = _replay(bytes(body), receive)
        form = await Request(scope, _replay(bytes(body), receive)).form()
        try:
            value = form.get(CSRF_FIELD)
        finally:
            await form.close()
        return (value if isinstance(value, str) else None), replay

    def _with_security_headers(self, send: Send) -> Send:
        pairs = self.security_headers

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in pairs:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        return wrapped

    def _with_login_cookie(self, send: Send, token: str) -> Send:
        carrier = Response()
        set_cookie(
            carrier,
            self.context.settings,
            self.login_cookie,
            token,
            max_age=LOGIN_COOKIE_MAX_AGE_SECONDS,
        )
        cookie = carrier.headers["set-cookie"]

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        return wrapped


def _replay(body: bytes, then: Receive) -> Receive:
    """The body already read, then whatever the client sends next (its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive

"""Session cookie -> principal.

A well-formed session cookie is looked up with `runtime.auth.authenticate(token)`; a
live session puts a `Principal` (user, session, raw token) into `scope["state"]`.
Missing, malformed, oversized, unknown or expired cookies leave the request anonymous
and create nothing (no store write, no Set-Cookie). Routes that need a user answer 401.
A session store that is down answers 503 with `Retry-After` (never a 500).

(Bearer tokens for mobile clients will be recognised here too, by a later change.)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from core.shared.errors import DomainError, UnavailableError
from entrypoints.http.context import PRINCIPAL_KEY, Principal
from entrypoints.http.cookies import looks_like_token, read_cookie
from entrypoints.http.errors import domain_error_response


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp, *, cookie_name: str) -> None:
        self.app = app
        self.cookie_name = cookie_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[PRINCIPAL_KEY] = None
        token = read_cookie(_header(scope, b"cookie"), self.cookie_name)
        if looks_like_token(token):
            assert token is not None
            try:
                runtime = getattr(scope["app"].state, "runtime", None)
                if runtime is None:
                    raise UnavailableError("not started", dependency="runtime")
                found = await runtime.auth.authenticate(token)
            except DomainError as exc:
                await domain_error_response(exc)(scope, receive, send)
                return
            if found is not None:
                state[PRINCIPAL_KEY] = Principal(
                    user=found.user, session=found.session, token=token
                )
        await self.app(scope, receive, send)

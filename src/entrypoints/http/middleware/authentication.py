"""Session cookie or bearer access token -> principal.

A well-formed session cookie is looked up with `AuthenticationService.authenticate(token)`; a
live session puts a `Principal` (user, session, raw token) into `scope["state"]`.
Missing, malformed, oversized, unknown or expired cookies leave the request anonymous
and create nothing (no store write, no Set-Cookie). Routes that need a user answer 401.
A session store that is down answers 503 with `Retry-After` (never a 500).

Bearer tokens (`Authorization: Bearer`, see `entrypoints/http/bearer.py`) are checked
with `TokenService.authenticate(token)` on API requests outside
`identity_free_paths`; a valid one puts a session-less `Principal` into the state and
the session cookie is not looked at; an invalid one is a 401 `invalid_token`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from core.identity.callers import TieredLimit
from core.identity.errors import InvalidAccessTokenError
from core.identity.service import AuthenticationService, TokenService
from core.shared.errors import DomainError, UnavailableError
from entrypoints.http.bearer import (
    MalformedBearer,
    bearer_applies,
    bearer_credentials,
    invalid_token_response,
    with_bearer_challenge,
)
from entrypoints.http.context import GENERAL_LIMIT_KEY, PRINCIPAL_KEY, Principal
from entrypoints.http.errors import domain_error_response
from entrypoints.session_cookie import looks_like_token, read_cookie


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class AuthenticationMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        cookie_name: str,
        identity_free_paths: Iterable[str] = (),
        general_limit: Callable[[str], TieredLimit | None] = lambda _path: None,
    ) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.identity_free_paths = frozenset(identity_free_paths)
        # The general rate limit to count with the caller's read (the rate-limit layer
        # inside uses that decision instead of asking the store again).
        self.general_limit = general_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[PRINCIPAL_KEY] = None
        if bearer_applies(scope, self.identity_free_paths):
            bearer = bearer_credentials(_header(scope, b"authorization"))
            if bearer is not None:
                await self._bearer(bearer, scope, receive, send)
                return
        token = read_cookie(_header(scope, b"cookie"), self.cookie_name)
        if looks_like_token(token):
            assert token is not None
            try:
                runtime = getattr(scope["app"].state, "runtime", None)
                if runtime is None:
                    raise UnavailableError("not started", dependency="runtime")
                found = await runtime.get(AuthenticationService).authenticate(
                    token, self.general_limit(scope["path"])
                )
            except DomainError as exc:
                await domain_error_response(exc)(scope, receive, send)
                return
            if found is not None:
                state[PRINCIPAL_KEY] = Principal(
                    user=found.user, session=found.session, token=token
                )
                state[GENERAL_LIMIT_KEY] = found.limit
        await self.app(scope, receive, send)

    async def _bearer(
        self, bearer: str | MalformedBearer, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if isinstance(bearer, MalformedBearer):
            await invalid_token_response(InvalidAccessTokenError.default_detail)(
                scope, receive, send
            )
            return
        try:
            runtime = getattr(scope["app"].state, "runtime", None)
            if runtime is None:
                raise UnavailableError("not started", dependency="runtime")
            found = await runtime.get(TokenService).authenticate(
                bearer, self.general_limit(scope["path"])
            )
        except InvalidAccessTokenError as exc:
            await invalid_token_response(exc.detail, exc.code)(scope, receive, send)
            return
        except DomainError as exc:
            await domain_error_response(exc)(scope, receive, send)
            return
        scope["state"][PRINCIPAL_KEY] = Principal(
            user=found.user, token_family=found.claims.family_id
        )
        scope["state"][GENERAL_LIMIT_KEY] = found.limit
        await self.app(scope, receive, with_bearer_challenge(send))

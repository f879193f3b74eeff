"""What a request carries besides its body: the runtime and the authenticated principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import HTTPConnection

from core.identity.errors import NotAuthenticatedError
from core.identity.model import BrowserSession, User
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.runtime import Runtime
from entrypoints.bootstrap.settings import Settings

PRINCIPAL_KEY = "principal"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as established by the authentication middleware from the session cookie.

    `token` is the raw session token; it stays in memory for this request (logout,
    keeping the current session on logout-all or password change) and is never logged.
    """

    user: User
    session: BrowserSession
    token: str

    @property
    def user_id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    def __repr__(self) -> str:  # never print the token
        return f"Principal(user_id={self.user.id}, session_id={self.session.id})"


def get_runtime(conn: HTTPConnection) -> Runtime:
    runtime = getattr(conn.app.state, "runtime", None)
    if runtime is None:  # lifespan not run (or failed): nothing to serve with
        raise UnavailableError("The application is not started.", dependency="runtime")
    return runtime  # type: ignore[no-any-return]


def get_settings(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings  # type: ignore[no-any-return]


def scope_principal(scope: dict[str, Any] | Any) -> Principal | None:
    state = scope.get("state") or {}
    principal = state.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None


def get_principal(conn: HTTPConnection) -> Principal | None:
    return scope_principal(conn.scope)


def require_principal(conn: HTTPConnection) -> Principal:
    principal = get_principal(conn)
    if principal is None:
        raise NotAuthenticatedError()
    return principal


def client_ip(conn: HTTPConnection) -> str | None:
    """The peer address. Behind a proxy, run uvicorn with trusted proxy headers."""
    return conn.client.host if conn.client else None

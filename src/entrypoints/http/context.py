"""What a request carries besides its body: the runtime and the authenticated principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import HTTPConnection

from core.identity.errors import NotAuthenticatedError
from core.identity.model import BrowserSession, User
from core.shared.context import ClientInfo
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.runtime import Runtime
from entrypoints.bootstrap.settings import Settings

PRINCIPAL_KEY = "principal"
# Where authentication leaves the general rate limit it counted with the caller's read
# (a `core.identity.callers.LimitRead`), for the rate-limit layer.
GENERAL_LIMIT_KEY = "general_limit"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as established by the authentication middleware from the session
    cookie or from a bearer access token.

    Session callers have `session` and `token`, the raw session token; it stays in
    memory for this request (logout, keeping the current session on logout-all or
    password change) and is never logged. Bearer callers have neither, and
    `token_family`: the refresh-token family (sign-in) their access token belongs to.
    """

    user: User
    session: BrowserSession | None = None
    token: str | None = None
    token_family: str | None = None

    @property
    def user_id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    @property
    def is_bearer(self) -> bool:
        """True when a bearer access token, not a session cookie, authenticated the caller."""
        return self.session is None

    def __repr__(self) -> str:  # never print the token
        if self.session is None:
            return f"Principal(user_id={self.user.id}, bearer=True)"
        return f"Principal(user_id={self.user.id}, session_id={self.session.id})"


def get_runtime(conn: HTTPConnection) -> Runtime:
    runtime = getattr(conn.app.state, "runtime", None)
    if runtime is None:  # lifespan not run (or failed): nothing to serve with
        raise UnavailableError("The application is not started.", dependency="runtime")
    return runtime  # type: ignore[no-any-return]


def service(conn: HTTPConnection, kind: type[T]) -> T:
    """The process's one `kind` (a core service or port), for a route or middleware."""
    return get_runtime(conn).get(kind)


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
    """The client address: the peer's, or from `X-Forwarded-For` when the peer is one of
    `PORTICO_HTTP__TRUSTED_PROXIES` (rewritten by the outermost middleware)."""
    return conn.client.host if conn.client else None


def client_info(conn: HTTPConnection) -> ClientInfo:
    """Where the request came from, for session lists and the audit trail."""
    return ClientInfo(ip=client_ip(conn), user_agent=conn.headers.get("user-agent") or None)

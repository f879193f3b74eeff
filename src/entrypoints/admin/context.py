"""What the admin panel's parts share: the settings, the process runtime (started by the
API app's lifespan), and the caller a request carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import HTTPConnection

from core.identity.authentication import Authenticated
from core.shared.context import ClientInfo
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.runtime import Runtime
from entrypoints.bootstrap.settings import Settings

T = TypeVar("T")

CALLER_KEY = "admin_caller"  # scope["state"]: the `Authenticated` session, or None
CSRF_KEY = "admin_csrf"  # scope["state"]: the token this request's forms must send back
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class AdminContext:
    settings: Settings
    # The runtime lives on the API app (its lifespan starts it); None until started.
    runtime_source: Callable[[], Runtime | None]

    def runtime(self) -> Runtime:
        runtime = self.runtime_source()
        if runtime is None:
            raise UnavailableError("The application is not started.", dependency="runtime")
        return runtime

    def get(self, kind: type[T]) -> T:
        return self.runtime().get(kind)


def scope_caller(scope: dict[str, Any] | Any) -> Authenticated | None:
    found = (scope.get("state") or {}).get(CALLER_KEY)
    return found if isinstance(found, Authenticated) else None


def caller(conn: HTTPConnection) -> Authenticated | None:
    return scope_caller(conn.scope)


def actor_id(conn: HTTPConnection) -> int:
    """The signed-in superuser's id (every admin route but login runs behind one)."""
    found = caller(conn)
    if found is None or found.user.id is None:
        raise PermissionError("no admin session")
    return found.user.id


def csrf_token(conn: HTTPConnection) -> str:
    """The token forms must carry (the session's, or the login form's double submit)."""
    return str((conn.scope.get("state") or {}).get(CSRF_KEY) or "")


def client_info(conn: HTTPConnection) -> ClientInfo:
    return ClientInfo(
        ip=conn.client.host if conn.client else None,
        user_agent=conn.headers.get("user-agent") or None,
    )

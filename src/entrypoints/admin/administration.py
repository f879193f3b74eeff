"""What the user actions need from identity: `core.identity.administration.UserAdministration`.

That service is being written beside this panel; until it is registered, the panel
speaks to it through this Protocol and finds it in the runtime by type when an action
runs (tests hand in a fake: `build_admin(..., user_administration=...)`).
"""

from __future__ import annotations

from typing import Protocol

from core.identity.model import User
from core.shared.errors import UnavailableError
from entrypoints.admin.context import AdminContext


class UserAdministrationPort(Protocol):
    async def deactivate(self, user_id: int, *, actor_id: int, reason: str = "") -> User: ...

    async def reactivate(self, user_id: int, *, actor_id: int) -> User: ...

    async def verify_email(self, user_id: int, *, actor_id: int) -> User: ...

    async def end_sessions(self, user_id: int, *, actor_id: int) -> int: ...


def resolve_administration(context: AdminContext) -> UserAdministrationPort:
    """The process's `UserAdministration` (or a stand-in a test registered in its place)."""
    if context.user_administration is not None:
        return context.user_administration()  # type: ignore[no-any-return]
    try:
        from core.identity.administration import UserAdministration  # lazy: see the module doc
    except ImportError:  # a build without it: the page says so, nothing changes
        raise UnavailableError(
            "User administration is not available in this build.", dependency="identity"
        ) from None
    return context.get(UserAdministration)

"""The user actions' service: `core.identity.administration.UserAdministration`, found in
the runtime when an action runs (the runtime starts after the panel is built)."""

from __future__ import annotations

from core.identity.administration import UserAdministration
from entrypoints.admin.context import AdminContext


def resolve_administration(context: AdminContext) -> UserAdministration:
    """The process's `UserAdministration`."""
    return context.get(UserAdministration)

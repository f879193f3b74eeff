"""The caller's notification preferences."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.notifications.service import NotificationService
from entrypoints.http.context import require_principal, service
from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse
from entrypoints.http.schemas.notifications import (
    NotificationPreferencesRead,
    NotificationPreferencesUpdate,
)

group = EndpointGroup(tags=("notifications",))

PREFERENCES_PATH = "/api/v1/notifications/preferences"


@group.get(PREFERENCES_PATH, access=Access.SESSION, responses={200: NotificationPreferencesRead})
async def read_notification_preferences(request: Request) -> Response:
    """Which non-essential emails the caller receives (the defaults until changed:
    everything but marketing). Security mail is always sent."""
    principal = require_principal(request)
    preferences = await service(request, NotificationService).get_preferences(principal.user_id)
    return ModelResponse(NotificationPreferencesRead.from_preferences(preferences))


@group.route(
    "PUT",
    PREFERENCES_PATH,
    access=Access.SESSION,
    responses={200: NotificationPreferencesRead},
)
async def update_notification_preferences(
    request: Request, json: NotificationPreferencesUpdate
) -> Response:
    """Change some flags; omitted flags keep their value. Answers the stored preferences.

    422 for an unknown flag (there is none for security mail) or a non-boolean value.
    """
    principal = require_principal(request)
    preferences = await service(request, NotificationService).update_preferences(
        principal.user_id, **json.changes()
    )
    return ModelResponse(NotificationPreferencesRead.from_preferences(preferences))

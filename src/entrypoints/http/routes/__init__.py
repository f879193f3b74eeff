"""Endpoint declarations, grouped by context. `ALL_GROUPS` is what the app serves."""

from __future__ import annotations

from entrypoints.http.endpoints import EndpointGroup
from entrypoints.http.routes import system
from entrypoints.http.routes.v1 import (
    auth,
    billing,
    conversations,
    notifications,
    oauth,
    payments,
    recovery,
    tokens,
    users,
    webhooks,
)

ALL_GROUPS: tuple[EndpointGroup, ...] = (
    system.group,
    auth.group,
    oauth.group,
    tokens.group,
    recovery.group,
    users.group,
    notifications.group,
    billing.group,
    payments.group,
    webhooks.group,
    conversations.group,
)

"""Endpoint declarations, grouped by context. `ALL_GROUPS` is what the app serves."""

from __future__ import annotations

from entrypoints.http.endpoints import EndpointGroup
from entrypoints.http.routes import system
from entrypoints.http.routes.v1 import auth, users

ALL_GROUPS: tuple[EndpointGroup, ...] = (system.group, auth.group, users.group)

"""Settings of the admin panel (`PORTICO_ADMIN__*`)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from entrypoints.bootstrap.http_settings import check_networks


class AdminSettings(BaseModel):
    # The admin panel at /admin (SQLAdmin, superusers only). Off unless asked for: it is
    # imported only when enabled, and it needs the SQL database backend.
    enabled: bool = False
    # Client networks (CIDR) allowed to reach /admin; unset: any address, which the
    # production security check refuses while the panel is enabled.
    allowed_networks: list[str] | None = None
    # Connections of the panel's own small pool (its reads never wait behind the API's).
    pool_size: int = Field(2, ge=1, le=20)

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_networks(value)

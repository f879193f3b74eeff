"""Notification preferences: which non-essential emails the caller receives."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from core.notifications.model import NotificationPreferences


class NotificationPreferencesRead(BaseModel):
    """One flag per kind of non-essential email. Security mail (verification, password
    reset, password changed) is always sent and has no flag."""

    onboarding: bool = Field(description="Welcome and getting-started mail.")
    product_updates: bool = Field(description="News about product features.")
    usage_alerts: bool = Field(description="Alerts about usage, limits and credits.")
    marketing: bool = Field(description="Marketing mail; off until you opt in.")

    @classmethod
    def from_preferences(cls, preferences: NotificationPreferences) -> NotificationPreferencesRead:
        return cls(**preferences.flags())


class NotificationPreferencesUpdate(BaseModel):
    """The flags to change; omitted (or null) flags keep their value. Unknown fields
    (`security` included) and non-boolean values are refused (422)."""

    model_config = ConfigDict(extra="forbid")

    onboarding: StrictBool | None = None
    product_updates: StrictBool | None = None
    usage_alerts: StrictBool | None = None
    marketing: StrictBool | None = None

    def changes(self) -> dict[str, bool]:
        return {
            name: value
            for name, value in self.model_dump(exclude_none=True).items()
            if isinstance(value, bool)
        }

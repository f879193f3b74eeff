"""Email messages, categories and per-user preferences."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EmailCategory(StrEnum):
    """Why an email is sent; decides whether preferences may suppress it."""

    SECURITY = "security"  # verification, password reset, password changed: always sent
    ONBOARDING = "onboarding"  # welcome and getting-started mail
    PRODUCT_UPDATES = "product_updates"
    USAGE_ALERTS = "usage_alerts"
    MARKETING = "marketing"

    @property
    def essential(self) -> bool:
        return self is EmailCategory.SECURITY


@dataclass(frozen=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None
    # Stable id for the message, so a retried job can be recognised by the receiver.
    message_id: str | None = None

"""Email messages, categories and per-user preferences."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from core.notifications.errors import InvalidPreferenceError


class EmailCategory(StrEnum):
    """Why an email is sent; decides whether preferences may suppress it."""

    SECURITY = "security"  # verification, password reset, password changed: always sent
    BILLING = "billing"  # receipts, failed payments: transactional, always sent
    ONBOARDING = "onboarding"  # welcome and getting-started mail
    PRODUCT_UPDATES = "product_updates"
    USAGE_ALERTS = "usage_alerts"
    MARKETING = "marketing"

    @property
    def essential(self) -> bool:
        return self in (EmailCategory.SECURITY, EmailCategory.BILLING)


def _single_line(name: str, value: str | None) -> None:
    # A CR or LF in a header value would let its content start a new header (or the
    # body): header injection. The renderer folds subjects; anything else is a bug.
    if value is not None and ("\r" in value or "\n" in value):
        raise ValueError(f"an email's {name} must be a single line")


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """One rendered email, ready for an `EmailSender`.

    `to`, `subject` and `message_id` become headers, so none may contain a line break.
    """

    to: str
    subject: str
    text: str
    html: str | None = None
    # Stable id for the message, so a retried job can be recognised by the receiver.
    message_id: str | None = None
    # What kind of mail this is (for adapters and tests); None for ad-hoc mail.
    category: EmailCategory | None = None

    def __post_init__(self) -> None:
        if not self.to.strip():
            raise ValueError("an email needs a recipient")
        _single_line("recipient", self.to)
        _single_line("subject", self.subject)
        _single_line("message id", self.message_id)


# The categories a user may switch off, in display order; each is a field below.
PREFERENCE_FLAGS: tuple[str, ...] = tuple(c.value for c in EmailCategory if not c.essential)


@dataclass(frozen=True, slots=True)
class NotificationPreferences:
    """Which non-essential mail a user wants. Security mail is always sent, so it has
    no flag and is never stored.

    Defaults (what a user without stored preferences gets): everything on except
    marketing, which needs an explicit opt-in.
    """

    user_id: int
    onboarding: bool = True
    product_updates: bool = True
    usage_alerts: bool = True
    marketing: bool = False

    def allows(self, category: EmailCategory) -> bool:
        if category.essential:
            return True
        return bool(getattr(self, category.value))

    def flags(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in PREFERENCE_FLAGS}

    def with_flags(self, **flags: bool) -> NotificationPreferences:
        """A copy with some flags changed; unknown names and non-booleans are refused."""
        for name, value in flags.items():
            if name not in PREFERENCE_FLAGS:
                raise InvalidPreferenceError(f"'{name}' is not a notification preference.")
            if not isinstance(value, bool):
                raise InvalidPreferenceError(f"'{name}' must be true or false.", field=name)
        return replace(self, **flags)

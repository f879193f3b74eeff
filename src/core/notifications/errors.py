"""Notification errors.

`EmailRejectedError` is a domain error (the mail server refused this message for good);
the template errors are programming errors (a wrong name or a missing context key in
the calling code), so they are `ValueError`s and never a 4xx answer.
"""

from __future__ import annotations

from core.shared.errors import RuleViolationError


class EmailRejectedError(RuleViolationError):
    """The mail server refused the message permanently (an SMTP 5xx): retrying the same
    message cannot succeed."""

    code = "email_rejected"
    default_detail = "The mail server refused the message."


class InvalidPreferenceError(RuleViolationError):
    code = "invalid_preference"
    default_detail = "This is not a valid notification preference."


class TemplateError(ValueError):
    """An email template cannot be rendered as asked."""


class UnknownTemplateError(TemplateError):
    def __init__(self, name: str) -> None:
        super().__init__(f"there is no email template named {name!r}")
        self.name = name


class MissingContextError(TemplateError):
    def __init__(self, template: str, missing: list[str]) -> None:
        names = ", ".join(sorted(missing))
        super().__init__(f"email template {template!r} needs context keys: {names}")
        self.template = template
        self.missing = sorted(missing)

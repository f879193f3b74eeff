"""The DomainError tree.

Categories say what kind of failure happened; leaves say exactly which. The HTTP layer
maps categories to status codes and uses `code` (stable, snake_case) in the response, so
the core never mentions HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    code: str = "domain_error"
    default_detail: str = "The request could not be completed."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class NotFoundError(DomainError):
    code = "not_found"
    default_detail = "The resource does not exist."


class ConflictError(DomainError):
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class PermissionDeniedError(DomainError):
    code = "permission_denied"
    default_detail = "You are not allowed to do this."


class AuthenticationError(DomainError):
    code = "not_authenticated"
    default_detail = "Authentication is required."


class RuleViolationError(DomainError):
    """Input that is well-formed but breaks a business rule (weak password, bad email)."""

    code = "rule_violation"
    default_detail = "The request breaks a rule."

    def __init__(self, detail: str | None = None, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class QuotaExceededError(DomainError):
    code = "quota_exceeded"
    default_detail = "A limit has been reached."

    def __init__(
        self,
        detail: str | None = None,
        *,
        reason: str = "limit_reached",
        limit: int | None = None,
        remaining: int | None = None,
        resets_at: str | None = None,
        upgrade_hint: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.limit = limit
        self.remaining = remaining
        self.resets_at = resets_at
        self.upgrade_hint = upgrade_hint


class RateLimitedError(DomainError):
    code = "rate_limited"
    default_detail = "Too many requests; try again later."

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UnavailableError(DomainError):
    """A dependency (database, session store, ...) is down or too slow."""

    code = "service_unavailable"
    default_detail = "A dependency is unavailable; try again shortly."

    def __init__(
        self, detail: str | None = None, *, dependency: str = "unknown", retry_after: int = 5
    ) -> None:
        super().__init__(detail)
        self.dependency = dependency
        self.retry_after = retry_after

"""Audit entries: who did what to what, from where, when, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# Detail values are scalars only: no nested structures that could smuggle a secret past
# review, and every value is queryable as text.
DetailValue = str | int | bool | None


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited action. `action` is a dotted name such as `auth.login`.

    Never holds a password, token, session id or hash: `details` carries ids, reasons
    and counts only.
    """

    action: str
    outcome: AuditOutcome
    occurred_at: datetime
    actor_id: int | None = None
    target_type: str | None = None
    target_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    details: dict[str, DetailValue] = field(default_factory=dict)
    id: int | None = None

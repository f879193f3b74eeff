"""Audit entries: who did what to what, from where, when, and how it ended."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.audit.errors import UnsafeAuditEntryError

# Detail values are scalars only: no nested structures that could smuggle a secret past
# review, and every value is queryable as text.
DetailValue = str | int | bool | None

MAX_DETAILS = 16
MAX_DETAIL_TEXT = 200
MAX_TARGET_ID = 64

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Key names that say "this holds a credential". Matched anywhere in the key, so
# `new_password`, `reset_token`, `session_id` and `token_hash` are all refused.
SECRET_KEY_PATTERN = re.compile(
    r"pass(word)?|secret|token|session|hash|csrf|cookie|authori[sz]ation|api_?key|credential"
    r"|(^|_)otp(_|$)",
    re.IGNORECASE,
)
# A modular-crypt hash (`$argon2id$...`, `$2b$...`, our test hasher's `$memory-...$`).
_CRYPT_HASH = re.compile(r"\$[A-Za-z0-9-]+\$")
# A long run of token alphabet (base64url, hex). Our tokens are 43 base64url characters,
# fingerprints 64 hex digits; identifiers and reason codes are short or all lower case.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_-]{32,}")
_HAS_UPPER_OR_DIGIT = re.compile(r"[A-Z0-9]")


def looks_like_secret(value: str) -> bool:
    """True for text that could be a password hash, a token or a fingerprint.

    Errs on the side of refusing: a long run of mixed-case letters and digits is
    treated as a secret whatever it is, since audit details never need one.
    """
    if _CRYPT_HASH.search(value):
        return True
    return any(_HAS_UPPER_OR_DIGIT.search(run) for run in _TOKEN_RUN.findall(value))


def check_details(details: Mapping[str, object]) -> None:
    """Raise `UnsafeAuditEntryError` unless every key and value is safe to keep forever.

    Keys are snake_case names that do not mention a credential; values are scalars, and
    text is short and does not look like a secret.
    """
    if len(details) > MAX_DETAILS:
        raise UnsafeAuditEntryError(f"audit details hold at most {MAX_DETAILS} entries")
    for key, value in details.items():
        if not isinstance(key, str) or not _NAME.match(key):
            raise UnsafeAuditEntryError(f"audit detail key {key!r} is not a snake_case name")
        if SECRET_KEY_PATTERN.search(key):
            raise UnsafeAuditEntryError(f"audit detail key {key!r} names a secret")
        if value is None or isinstance(value, bool | int):
            continue
        if not isinstance(value, str):
            raise UnsafeAuditEntryError(
                f"audit detail {key!r} must be text, a number, a flag or null"
            )
        if len(value) > MAX_DETAIL_TEXT:
            raise UnsafeAuditEntryError(f"audit detail {key!r} is too long")
        if looks_like_secret(value):
            # The value is deliberately not part of the message: it may be the secret.
            raise UnsafeAuditEntryError(f"audit detail {key!r} looks like a secret")


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

    def __post_init__(self) -> None:
        if not _ACTION.match(self.action):
            raise UnsafeAuditEntryError(f"audit action {self.action!r} is not a dotted name")
        if self.occurred_at.tzinfo is None:
            raise UnsafeAuditEntryError("audit times must be timezone-aware")
        if self.target_type is not None and not _NAME.match(self.target_type):
            raise UnsafeAuditEntryError(f"audit target type {self.target_type!r} is not a name")
        if self.target_id is not None and (
            len(self.target_id) > MAX_TARGET_ID or looks_like_secret(self.target_id)
        ):
            raise UnsafeAuditEntryError("audit target ids are short public ids")
        # A private copy: the caller's dict cannot change after the check.
        object.__setattr__(self, "details", dict(self.details))
        self.check()

    def check(self) -> None:
        """Re-run the secret guard (adapters call it again just before writing)."""
        check_details(self.details)

"""Accounts: registration, the caller's profile, deletion."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.identity.model import (
    EMAIL_MAX_LENGTH,
    EMAIL_PATTERN,
    USERNAME_PATTERN,
    WHITESPACE,
    User,
)
from core.identity.passwords import MAX_PASSWORD_LENGTH

# The core owns the rules (email shape, username charset, password policy) and answers
# 422 with a precise `code`; these bounds only keep absurd input away from it.
EMAIL_MAX = 320
USERNAME_MAX = 64
# The core's rules for new emails and usernames, stated in the document (not checked here,
# so a violation keeps the core's `code`). Surrounding whitespace is trimmed off an email.
NEW_EMAIL_RULE = {"pattern": f"^[{WHITESPACE}]*{EMAIL_PATTERN}[{WHITESPACE}]*$"}
USERNAME_RULE = {"pattern": f"^{USERNAME_PATTERN}$"}
# Marks a password being set: the document states the policy's minimum length there
# (a setting, so `openapi.py` fills it in per app).
NEW_PASSWORD_MARK = "x-portico-new-password"
NEW_PASSWORD = {NEW_PASSWORD_MARK: True}


class StrictRequest(BaseModel):
    """Unknown fields are refused (422), so privileged fields can never slip through."""

    model_config = ConfigDict(extra="forbid")


class UserCreate(StrictRequest):
    email: str = Field(min_length=1, max_length=EMAIL_MAX_LENGTH, json_schema_extra=NEW_EMAIL_RULE)
    username: str = Field(min_length=1, max_length=USERNAME_MAX, json_schema_extra=USERNAME_RULE)
    password: str = Field(
        min_length=1, max_length=MAX_PASSWORD_LENGTH, json_schema_extra=NEW_PASSWORD
    )


class UserUpdate(StrictRequest):
    """Only the username is writable; tier, superuser, verification, credits are not."""

    username: str | None = Field(
        None, min_length=1, max_length=USERNAME_MAX, json_schema_extra=USERNAME_RULE
    )


class DeleteMe(StrictRequest):
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserRead(BaseModel):
    id: int
    email: str
    username: str
    tier: str
    email_verified: bool
    created_at: datetime | None

    @classmethod
    def from_user(cls, user: User) -> UserRead:
        assert user.id is not None
        return cls(
            id=user.id,
            email=str(user.email),
            username=str(user.username),
            tier=user.tier_code,
            email_verified=user.email_verified,
            created_at=user.created_at,
        )

"""Accounts: registration, the caller's profile, deletion."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.identity.model import User
from core.identity.passwords import MAX_PASSWORD_LENGTH

# The core owns the rules (email shape, username charset, password policy) and answers
# 422 with a precise `code`; these bounds only keep absurd input away from it.
EMAIL_MAX = 320
USERNAME_MAX = 64


class StrictRequest(BaseModel):
    """Unknown fields are refused (422), so privileged fields can never slip through."""

    model_config = ConfigDict(extra="forbid")


class UserCreate(StrictRequest):
    email: str = Field(min_length=1, max_length=EMAIL_MAX)
    username: str = Field(min_length=1, max_length=USERNAME_MAX)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserUpdate(StrictRequest):
    """Only the username is writable; tier, superuser, verification, credits are not."""

    username: str | None = Field(None, min_length=1, max_length=USERNAME_MAX)


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

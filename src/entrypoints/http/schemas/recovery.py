"""Password reset and email verification."""

from __future__ import annotations

from pydantic import Field

from core.identity.passwords import MAX_PASSWORD_LENGTH
from entrypoints.http.schemas.users import EMAIL_MAX, NEW_PASSWORD, StrictRequest

# Tokens are 43 characters; the bound only keeps absurd input away from the core.
TOKEN_MAX = 256


class PasswordResetRequest(StrictRequest):
    email: str = Field(min_length=1, max_length=EMAIL_MAX)


class PasswordResetConfirm(StrictRequest):
    token: str = Field(
        min_length=1, max_length=TOKEN_MAX, description="The token from the reset link."
    )
    new_password: str = Field(
        min_length=1, max_length=MAX_PASSWORD_LENGTH, json_schema_extra=NEW_PASSWORD
    )


class EmailVerificationConfirm(StrictRequest):
    token: str = Field(
        min_length=1, max_length=TOKEN_MAX, description="The token from the verification link."
    )

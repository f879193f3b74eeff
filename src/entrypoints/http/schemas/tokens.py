"""Bearer tokens for mobile and API clients: sign-in, refresh, revocation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from core.identity.passwords import MAX_PASSWORD_LENGTH
from core.identity.tokens import TokenPair
from entrypoints.http.schemas.users import EMAIL_MAX, StrictRequest

# Refresh tokens are 43 characters; the bound only keeps absurd input away from the core.
REFRESH_TOKEN_MAX = 256


class TokenRequest(StrictRequest):
    email: str = Field(min_length=1, max_length=EMAIL_MAX)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class TokenRefreshRequest(StrictRequest):
    refresh_token: str = Field(
        min_length=1,
        max_length=REFRESH_TOKEN_MAX,
        description="The refresh token of the last pair; it is dead after this call.",
    )


class TokenRevokeRequest(StrictRequest):
    refresh_token: str = Field(
        min_length=1,
        max_length=REFRESH_TOKEN_MAX,
        description="A refresh token; its whole sign-in (token family) ends.",
    )


class TokenResponse(BaseModel):
    access_token: str = Field(
        description="Send it as `Authorization: Bearer <access_token>`; no CSRF token needed."
    )
    refresh_token: str = Field(
        description="Trade it for a new pair at POST /api/v1/auth/token/refresh before it "
        "expires. Single use: keep only the newest one, and refresh one request at a time "
        "(presenting a used refresh token again ends the whole sign-in)."
    )
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")

    @classmethod
    def from_pair(cls, pair: TokenPair) -> TokenResponse:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type="Bearer",
            expires_in=pair.expires_in,
        )

"""OAuth sign-in: the query the provider redirects back with."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.identity.oauth import MAX_CODE_LENGTH


class OAuthCallbackQuery(BaseModel):
    """What the provider appends to the callback URL. Providers add more (`scope`,
    `authuser`, `iss`, ...): ignored."""

    model_config = ConfigDict(extra="ignore")

    code: str | None = Field(
        None, max_length=MAX_CODE_LENGTH, description="The authorization code."
    )
    state: str | None = Field(
        None, max_length=512, description="The `state` sent with the authorization request."
    )
    error: str | None = Field(
        None,
        max_length=200,
        description="Set instead of `code` when the sign-in did not happen at the provider "
        "(`access_denied` when the person declined).",
    )

"""Logging in and out, browser sessions, password change."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, StrictBool

from core.identity.model import BrowserSession
from core.identity.passwords import MAX_PASSWORD_LENGTH
from entrypoints.http.schemas.users import EMAIL_MAX, NEW_PASSWORD, StrictRequest, UserRead


class CsrfTokenRead(BaseModel):
    csrf_token: str = Field(description="Send it back in `X-CSRF-Token` with the login form.")


class LoginRequest(StrictRequest):
    email: str = Field(min_length=1, max_length=EMAIL_MAX)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class LoginResponse(BaseModel):
    user: UserRead
    csrf_token: str = Field(
        description="The session's CSRF token: send it in `X-CSRF-Token` on every "
        "POST/PUT/PATCH/DELETE made with the session cookie."
    )


class LogoutAllRequest(StrictRequest):
    keep_current: StrictBool = Field(False, description="Keep the session making this request.")


class PasswordChange(StrictRequest):
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(
        min_length=1, max_length=MAX_PASSWORD_LENGTH, json_schema_extra=NEW_PASSWORD
    )


class SessionRead(BaseModel):
    id: int
    created_at: datetime
    last_seen_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = Field(description="True for the session making this request.")

    @classmethod
    def from_session(cls, session: BrowserSession, *, current_id: int | None) -> SessionRead:
        assert session.id is not None
        return cls(
            id=session.id,
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            ip=session.ip,
            user_agent=session.user_agent,
            current=session.id == current_id,
        )


class SessionList(BaseModel):
    items: list[SessionRead]
    next_cursor: str | None = None

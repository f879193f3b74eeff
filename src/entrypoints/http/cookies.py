"""Pre-session CSRF cookies and signed values; the session cookie itself lives in
`entrypoints.session_cookie` (shared with the admin) and is re-exported here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from starlette.responses import Response

from core.shared.hashing import constant_time_equals
from entrypoints.bootstrap.settings import Settings
from entrypoints.session_cookie import (
    MAX_TOKEN_LENGTH,
    clear_cookie,
    clear_session_cookie,
    host_cookie_name,
    looks_like_token,
    read_cookie,
    session_token,
    set_cookie,
    set_session_cookie,
)

PRE_SESSION_COOKIE = "portico_csrf"
PRE_SESSION_MAX_AGE_SECONDS = 2 * 60 * 60
CSRF_HEADER = "X-CSRF-Token"

__all__ = [
    "CSRF_HEADER",
    "MAX_TOKEN_LENGTH",
    "PRE_SESSION_COOKIE",
    "PreSessionTokens",
    "TimedSigner",
    "clear_cookie",
    "clear_session_cookie",
    "host_cookie_name",
    "looks_like_token",
    "pre_session_cookie_name",
    "read_cookie",
    "session_token",
    "set_cookie",
    "set_pre_session_cookie",
    "set_session_cookie",
]


def pre_session_cookie_name(settings: Settings) -> str:
    return host_cookie_name(settings, PRE_SESSION_COOKIE)


def set_pre_session_cookie(response: Response, settings: Settings, token: str) -> None:
    set_cookie(
        response,
        settings,
        pre_session_cookie_name(settings),
        token,
        max_age=PRE_SESSION_MAX_AGE_SECONDS,
    )


class TimedSigner:
    """HMAC-SHA256 signatures for values that carry their own issue time.

    The key is derived from the secret key and a `purpose`, so a value signed for one
    use never verifies for another. `is_fresh` accepts an issue time (whole seconds
    since the epoch, as digits) at most `max_age_seconds` old, tolerating
    `CLOCK_SKEW_SECONDS` from the future (several processes, several clocks).
    """

    CLOCK_SKEW_SECONDS = 60

    def __init__(self, secret: str, purpose: str, *, max_age_seconds: int) -> None:
        self._key = hmac.new(
            secret.encode("utf-8"), purpose.encode("ascii"), hashlib.sha256
        ).digest()
        self._max_age = max_age_seconds

    @staticmethod
    def stamp(now: datetime) -> str:
        return str(int(now.timestamp()))

    def sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode("ascii", "replace"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def verify(self, payload: str, signature: str) -> bool:
        return constant_time_equals(self.sign(payload), signature)

    def is_fresh(self, issued_at: str, now: datetime) -> bool:
        if not issued_at.isdigit():
            return False
        age = now.timestamp() - int(issued_at)
        return -self.CLOCK_SKEW_SECONDS <= age <= self._max_age


class PreSessionTokens:
    """Signed double-submit tokens protecting the login and registration forms.

    A token is `<issued_at>.<random>.<hmac>`; the HMAC key is derived from the secret
    key, so a token cannot be forged or extended, and it expires after
    `PRE_SESSION_MAX_AGE_SECONDS`. The form must send the same token in `X-CSRF-Token`
    as in the cookie; a cross-site page can neither read the cookie nor set the header.
    """

    def __init__(self, secret: str, *, max_age_seconds: int = PRE_SESSION_MAX_AGE_SECONDS):
        self._signer = TimedSigner(
            secret, "portico/csrf/pre-session/v1", max_age_seconds=max_age_seconds
        )

    def issue(self, now: datetime) -> str:
        payload = f"{TimedSigner.stamp(now)}.{secrets.token_urlsafe(24)}"
        return f"{payload}.{self._signer.sign(payload)}"

    def verify(self, token: str | None, now: datetime) -> bool:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return False
        parts = token.split(".")
        if len(parts) != 3:
            return False
        payload = f"{parts[0]}.{parts[1]}"
        return self._signer.verify(payload, parts[2]) and self._signer.is_fresh(parts[0], now)

"""The OAuth state cookie: what a browser keeps between `authorize` and `callback`.

The value is `v1.<issued_at>.<provider>.<state>.<code_verifier>.<hmac>`, signed with a
key derived from the secret key (the `PreSessionTokens` way), so it cannot be forged,
altered or extended; it expires after `oauth.state_max_age_seconds` (10 minutes by
default). HttpOnly, SameSite=Lax (sent on the provider's top-level redirect back, not
on cross-site subrequests), Path=/, `__Host-` prefixed and Secure with secure cookies.
It is signed, not encrypted: the verifier only matters together with a code issued for
this browser, and the cookie never leaves it but to us.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import HTTPConnection
from starlette.responses import Response

from core.identity.oauth_model import OAuthStart
from entrypoints.bootstrap.settings import Settings
from entrypoints.http.cookies import (
    TimedSigner,
    clear_cookie,
    host_cookie_name,
    read_cookie,
    set_cookie,
)

OAUTH_COOKIE = "portico_oauth"
MAX_COOKIE_LENGTH = 512
_VERSION = "v1"
_PART = re.compile(r"^[A-Za-z0-9_-]{1,160}$")


@dataclass(frozen=True, slots=True)
class KeptSignIn:
    """A sign-in this browser started: the provider and the secrets to finish it."""

    provider: str
    state: str
    code_verifier: str

    def __repr__(self) -> str:
        return f"KeptSignIn(provider={self.provider!r})"


class OAuthStateCookies:
    """Seals an `OAuthStart` into a cookie value and opens it again."""

    def __init__(self, secret: str, *, max_age_seconds: int) -> None:
        self._signer = TimedSigner(
            secret, "portico/oauth/state/v1", max_age_seconds=max_age_seconds
        )

    def seal(self, start: OAuthStart, now: datetime) -> str:
        payload = ".".join(
            (_VERSION, TimedSigner.stamp(now), start.provider, start.state, start.code_verifier)
        )
        return f"{payload}.{self._signer.sign(payload)}"

    def open(self, value: str | None, now: datetime) -> KeptSignIn | None:
        """The kept sign-in, or None for a missing, malformed, forged or expired value."""
        if not value or len(value) > MAX_COOKIE_LENGTH:
            return None
        parts = value.split(".")
        if len(parts) != 6 or parts[0] != _VERSION:
            return None
        if not all(_PART.match(part) for part in parts[2:5]):
            return None
        if not self._signer.verify(".".join(parts[:5]), parts[5]):
            return None
        if not self._signer.is_fresh(parts[1], now):
            return None
        return KeptSignIn(provider=parts[2], state=parts[3], code_verifier=parts[4])


def oauth_cookie_name(settings: Settings) -> str:
    return host_cookie_name(settings, OAUTH_COOKIE)


def oauth_state_cookies(conn: HTTPConnection) -> OAuthStateCookies:
    """The app's signer (made once by `create_app`)."""
    return conn.app.state.oauth_state_cookies  # type: ignore[no-any-return]


def read_oauth_cookie(conn: HTTPConnection, settings: Settings) -> str | None:
    return read_cookie(conn.headers.get("cookie"), oauth_cookie_name(settings))


def set_oauth_cookie(response: Response, settings: Settings, value: str) -> None:
    set_cookie(
        response,
        settings,
        oauth_cookie_name(settings),
        value,
        max_age=settings.oauth.state_max_age_seconds,
    )


def clear_oauth_cookie(response: Response, settings: Settings) -> None:
    clear_cookie(response, settings, oauth_cookie_name(settings))

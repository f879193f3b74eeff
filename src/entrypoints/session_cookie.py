"""The session cookie, shared by every browser-facing entrypoint (the API and the admin).

Cookies are HttpOnly, SameSite=Lax, Path=/, without Domain; with
`settings.cookie_secure` they are Secure and `__Host-` prefixed (browsers then refuse
them unless Secure, Path=/ and host-only, so a sibling subdomain cannot plant one).
The cookie holds the raw session token; the store keeps only its fingerprint.
"""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection, cookie_parser
from starlette.responses import Response

from entrypoints.bootstrap.settings import Settings

# Session tokens are URL-safe base64 (`secrets.token_urlsafe(32)` is 43 chars). Anything
# outside this shape never reaches the session store: it is anonymous and creates nothing.
MAX_TOKEN_LENGTH = 256
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


def looks_like_token(value: str | None) -> bool:
    return value is not None and len(value) <= MAX_TOKEN_LENGTH and bool(_TOKEN.match(value))


def read_cookie(cookie_header: str | None, name: str) -> str | None:
    if not cookie_header:
        return None
    return cookie_parser(cookie_header).get(name)


def session_token(conn: HTTPConnection, settings: Settings) -> str | None:
    """The session cookie's value when it is well-formed (not necessarily live)."""
    value = read_cookie(conn.headers.get("cookie"), settings.session_cookie_name)
    return value if looks_like_token(value) else None


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    set_cookie(
        response,
        settings,
        settings.session_cookie_name,
        token,
        max_age=settings.sessions.absolute_lifetime_seconds,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    clear_cookie(response, settings, settings.session_cookie_name)


def host_cookie_name(settings: Settings, name: str) -> str:
    """`name`, `__Host-` prefixed when cookies are secure (see the module doc)."""
    return f"__Host-{name}" if settings.cookie_secure else name


def set_cookie(
    response: Response, settings: Settings, name: str, value: str, *, max_age: int
) -> None:
    """Every cookie of ours: HttpOnly, SameSite=Lax, Path=/, no Domain, Secure per settings."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name, path="/", secure=settings.cookie_secure, httponly=True, samesite="lax"
    )

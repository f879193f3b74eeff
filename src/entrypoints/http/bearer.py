"""`Authorization: Bearer` for mobile and API clients (RFC 6750).

- Only the `Bearer` scheme is ours; other schemes (say, Basic added by a proxy in front
  of a staging deployment) are not credentials here and are ignored.
- A bearer token is checked on every API request except the identity-free endpoints
  (`PUBLIC` and `PRE_SESSION`: token issue and refresh, login, registration, ...),
  where an Authorization header plays no part, so a client that attaches an expired
  access token to its refresh call still gets through.
- When a bearer token is presented it is the only credential looked at (a session
  cookie on the same request is ignored), and a token that is malformed, invalid or
  expired is a 401 `invalid_token` problem, never an anonymous request.
- Every 401 answer to a request that presented a bearer token carries a
  `WWW-Authenticate: Bearer` challenge (with `error="invalid_token"` when the token
  itself was refused).
"""

from __future__ import annotations

import functools
import re

from starlette.responses import Response
from starlette.types import Message, Scope, Send

from entrypoints.http.errors import problem_response

API_PREFIX = "/api/"
REALM = "portico"
MAX_BEARER_LENGTH = 4096
# RFC 6750 b64token.
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
CHALLENGE = f'Bearer realm="{REALM}"'
INVALID_TOKEN_CHALLENGE = f'Bearer realm="{REALM}", error="invalid_token"'


class MalformedBearer:
    """A `Bearer` Authorization header whose token is empty, oversized or not a b64token."""


MALFORMED = MalformedBearer()


def bearer_credentials(authorization: str | None) -> str | MalformedBearer | None:
    """The token of an `Authorization: Bearer <token>` header; `MALFORMED` for a Bearer
    header without a usable token; None without a header or for another scheme."""
    if authorization is None:
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = rest.strip()
    if not token or len(token) > MAX_BEARER_LENGTH or not _B64TOKEN.match(token):
        return MALFORMED
    return token


def invalid_token_response(detail: str, code: str = "invalid_token") -> Response:
    """401 problem with the RFC 6750 `invalid_token` challenge."""
    return problem_response(
        401, code, detail, headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE}
    )


def with_bearer_challenge(send: Send) -> Send:
    """Wrap `send` so a 401 answer without a challenge gets `WWW-Authenticate: Bearer`."""

    async def send_with_challenge(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 401:
            headers = list(message.get("headers", ()))
            if not any(key.lower() == b"www-authenticate" for key, _ in headers):
                headers.append((b"www-authenticate", CHALLENGE.encode("latin-1")))
                message = {**message, "headers": headers}
        await send(message)

    return send_with_challenge


def bearer_applies(scope: Scope, identity_free_paths: frozenset[str]) -> bool:
    """Whether this request's Authorization header is looked at (see the module doc).

    Identity-free paths may be route templates (`/api/v1/auth/oauth/{provider}/...`)."""
    path: str = scope.get("path", "")
    if not path.startswith(API_PREFIX) or path in identity_free_paths:
        return False
    return not any(_template(free).match(path) for free in identity_free_paths if "{" in free)


@functools.lru_cache(maxsize=128)
def _template(path: str) -> re.Pattern[str]:
    """A route template as a regex: each `{param}` matches one path segment."""
    literal = re.split(r"\{[^/{}]+\}", path)
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in literal) + "$")

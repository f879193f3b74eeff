"""What the HTTP providers share: configuration, the authorization URL, the code-for-token
exchange with PKCE, and the translation of HTTP failures into core errors.

Failures: a transport error, a timeout, a 429 or a 5xx, or an answer that is not JSON
mean the provider is unavailable (`UnavailableError`, a 503 with Retry-After upstream);
an OAuth error answer (`{"error": ...}`, any other 4xx) means it refused this sign-in
(`OAuthFailedError`). Tokens and secrets never go into an error message.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from core.identity.oauth_errors import OAuthFailedError
from core.identity.oauth_model import ProviderIdentity, check_provider_name
from core.identity.oauth_ports import OAuthProvider
from core.shared.errors import UnavailableError

# The whole exchange (token, then one or two reads) may take this many timeouts: httpx's
# timeout applies to each phase of each call, so a server that drips its answer could
# otherwise hold a sign-in for minutes.
DEADLINE_FACTOR = 3
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One provider's client registration and endpoints (from settings)."""

    name: str
    client_id: str
    client_secret: str
    redirect_uri: str
    authorize_url: str
    token_url: str
    userinfo_url: str
    scope: str
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        check_provider_name(self.name)
        if not self.client_id:
            raise ValueError(f"{self.name}: a client id is required")

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"ProviderConfig(name={self.name!r}, client_id={self.client_id!r})"


def new_http_client(timeout_seconds: float) -> httpx.AsyncClient:
    """The process's client for every provider: timeouts on connect, read, write and
    pool wait; no redirects followed (an API that redirects is misconfigured)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
        headers={"User-Agent": "portico-oauth"},
    )


class HttpOAuthProvider(OAuthProvider):
    """Base of the HTTP providers: authorization code flow with PKCE S256.

    Subclasses say how to read the identity with the access token (`_identity`).
    Contract: `core.identity.oauth_ports.OAuthProvider`.
    """

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient) -> None:
        self._config = config
        self._http = http
        self._dependency = f"oauth:{config.name}"

    @property
    def name(self) -> str:
        return self._config.name

    def authorization_url(self, *, state: str, code_challenge: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self._config.client_id,
            "redirect_uri": self._config.redirect_uri,
            "scope": self._config.scope,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            **self._extra_authorization_params(),
        }
        base = self._config.authorize_url
        return f"{base}{'&' if '?' in base else '?'}{urlencode(params)}"

    async def exchange(self, *, code: str, code_verifier: str) -> ProviderIdentity:
        try:
            async with asyncio.timeout(self._config.timeout_seconds * DEADLINE_FACTOR):
                access_token = await self._access_token(code, code_verifier)
                return await self._identity(access_token)
        except TimeoutError:
            raise self._unavailable("took too long") from None

    def _extra_authorization_params(self) -> dict[str, str]:
        return {}

    @abstractmethod
    async def _identity(self, access_token: str) -> ProviderIdentity: ...

    async def _access_token(self, code: str, code_verifier: str) -> str:
        response = await self._send(
            "POST",
            self._config.token_url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._config.redirect_uri,
                "client_id": self._config.client_id,
                "client_secret": self._config.client_secret,
                "code_verifier": code_verifier,
            },
            headers={"Accept": "application/json"},
        )
        body = self._json(response)
        # GitHub answers refusals with 200 and an `error` field; others with a 400.
        if response.status_code >= 400 or not isinstance(body, dict) or "error" in body:
            raise OAuthFailedError()
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise OAuthFailedError()
        return token

    async def _get_json(self, url: str, access_token: str, *, accept: str) -> Any:
        """GET with the access token; the JSON body of a 2xx, else `OAuthFailedError`."""
        response = await self._send(
            "GET", url, headers={"Authorization": f"Bearer {access_token}", "Accept": accept}
        )
        body = self._json(response)
        if response.status_code >= 400:
            raise OAuthFailedError()
        return body

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise self._unavailable("timed out") from None
        except httpx.HTTPError as exc:
            # Transport failures (refused, reset, DNS); the message names no secret, but
            # the type is all a reader needs.
            raise self._unavailable(f"unreachable ({type(exc).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise self._unavailable(f"answered {response.status_code}")
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            # An HTML error page from a proxy or an outage page: not a refusal of the code.
            raise self._unavailable("answered something that is not JSON") from None

    def _unavailable(self, what: str) -> UnavailableError:
        return UnavailableError(
            f"The {self.name} sign-in provider {what}.",
            dependency=self._dependency,
            retry_after=RETRY_AFTER_SECONDS,
        )


def text(value: object) -> str | None:
    """A non-empty string from a JSON value, else None."""
    return value if isinstance(value, str) and value else None

"""A fake OAuth provider in process memory (tests, demos): plays both the provider's
consent page (`approve`, `deny`) and its token endpoint (`exchange`)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from core.identity.oauth import pkce_challenge
from core.identity.oauth_errors import OAuthFailedError
from core.identity.oauth_model import ProviderIdentity, check_provider_name
from core.identity.oauth_ports import OAuthProvider
from core.shared.errors import UnavailableError
from core.shared.ids import TokenGenerator


@dataclass(frozen=True, slots=True)
class FakeAccount:
    """A person with an account at the fake provider."""

    subject: str
    email: str | None = None
    email_verified: bool = True
    name: str | None = None
    login: str | None = None


@dataclass(frozen=True, slots=True)
class _Grant:
    account: FakeAccount
    code_challenge: str


class InMemoryOAuthProvider(OAuthProvider):
    """`OAuthProvider` whose provider side runs in this process (contract: the port).

    `authorization_url` looks like a real provider's (client id, redirect URI, scope,
    state, S256 challenge). A test then plays the person at the provider:
    `approve(url, account)` checks the request as a provider would (client id, redirect
    URI, S256) and returns the redirect back to the callback with a fresh code;
    `deny(url)` returns the redirect with `error=access_denied`. `exchange` accepts a
    code once, and only with the verifier of its challenge (`OAuthFailedError`
    otherwise). Set `available = False` to play an outage (`UnavailableError`).
    Never configure it in production: anyone could sign in as anyone.
    """

    def __init__(
        self,
        name: str,
        *,
        client_id: str,
        redirect_uri: str,
        authorize_url: str,
        tokens: TokenGenerator,
        scope: str = "openid email profile",
    ) -> None:
        self._name = check_provider_name(name)
        self._client_id = client_id
        self._redirect_uri = redirect_uri
        self._authorize_url = authorize_url
        self._scope = scope
        self._tokens = tokens
        self._grants: dict[str, _Grant] = {}
        self.available = True

    @property
    def name(self) -> str:
        return self._name

    def authorization_url(self, *, state: str, code_challenge: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self._redirect_uri,
            "scope": self._scope,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self._authorize_url}?{urlencode(params)}"

    async def exchange(self, *, code: str, code_verifier: str) -> ProviderIdentity:
        if not self.available:
            raise UnavailableError(
                f"The {self._name} sign-in provider is down.", dependency=f"oauth:{self._name}"
            )
        grant = self._grants.pop(code, None)  # a code works once, right or wrong
        if grant is None or pkce_challenge(code_verifier) != grant.code_challenge:
            raise OAuthFailedError()
        account = grant.account
        return ProviderIdentity(
            provider=self._name,
            subject=account.subject,
            email=account.email,
            email_verified=account.email is not None and account.email_verified,
            display_name=account.name,
            login=account.login,
        )

    # --- the provider's side, driven by tests -----------------------------------------

    def approve(self, authorization_url: str, account: FakeAccount) -> str:
        """The person signs in at the provider and consents: the redirect back (our
        callback with `code` and `state`)."""
        query = self._checked(authorization_url)
        code = self._tokens.token(24)
        self._grants[code] = _Grant(account, query["code_challenge"])
        return self._back({"code": code, "state": query["state"]})

    def deny(self, authorization_url: str) -> str:
        """The person declines: the redirect back with `error=access_denied`."""
        query = self._checked(authorization_url)
        return self._back({"error": "access_denied", "state": query["state"]})

    def _checked(self, authorization_url: str) -> dict[str, str]:
        parts = urlsplit(authorization_url)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        expected = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self._redirect_uri,
            "code_challenge_method": "S256",
        }
        for key, value in expected.items():
            if query.get(key) != value:
                raise ValueError(f"the provider refuses the request: bad {key}")
        if not query.get("state") or not query.get("code_challenge"):
            raise ValueError("the provider refuses the request: no state or challenge")
        return query

    def _back(self, params: dict[str, str]) -> str:
        return f"{self._redirect_uri}?{urlencode(params)}"

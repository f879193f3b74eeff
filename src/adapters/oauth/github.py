"""GitHub sign-in: OAuth apps (or GitHub apps acting as one) with PKCE.

The identity comes from `GET /user` (the numeric id is the subject, `login` the
handle) and the email from `GET /user/emails`: the primary address if verified, else
another verified one. `/user`'s own `email` is the public profile address, which GitHub
does not vouch for, so it is used (unverified) only when no verified one is listed.
"""

from __future__ import annotations

from typing import Any

import httpx

from adapters.oauth import endpoints
from adapters.oauth.client import HttpOAuthProvider, ProviderConfig, text
from core.identity.oauth_errors import OAuthFailedError
from core.identity.oauth_model import ProviderIdentity

AUTHORIZE_URL = endpoints.GITHUB_AUTHORIZE_URL
TOKEN_URL = endpoints.GITHUB_TOKEN_URL
USER_URL = endpoints.GITHUB_USER_URL
EMAILS_URL = endpoints.GITHUB_EMAILS_URL
SCOPE = endpoints.GITHUB_SCOPE
API_ACCEPT = "application/vnd.github+json"


def verified_email(emails: Any) -> str | None:
    """The primary verified address, else the first verified one, else None."""
    if not isinstance(emails, list):
        return None
    listed = [e for e in emails if isinstance(e, dict) and text(e.get("email"))]
    verified = [e for e in listed if e.get("verified") is True]
    primary = [e for e in verified if e.get("primary") is True]
    chosen = (primary or verified or [None])[0]
    return text(chosen.get("email")) if chosen else None


class GitHubOAuthProvider(HttpOAuthProvider):
    """`OAuthProvider` for GitHub (contract: the port). `emails_url` lists the user's
    addresses with their verification state (needs the `user:email` scope)."""

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient, emails_url: str) -> None:
        super().__init__(config, http)
        self._emails_url = emails_url

    async def _identity(self, access_token: str) -> ProviderIdentity:
        user = await self._get_json(self._config.userinfo_url, access_token, accept=API_ACCEPT)
        if not isinstance(user, dict):
            raise OAuthFailedError()
        subject = user.get("id")
        # bool is an int: refuse it along with anything that is not a positive number.
        if isinstance(subject, bool) or not isinstance(subject, int) or subject <= 0:
            raise OAuthFailedError()
        email = verified_email(
            await self._get_json(self._emails_url, access_token, accept=API_ACCEPT)
        )
        return ProviderIdentity(
            provider=self.name,
            subject=str(subject),
            email=email or text(user.get("email")),
            email_verified=email is not None,
            display_name=text(user.get("name")),
            login=text(user.get("login")),
        )

"""Google sign-in: OpenID Connect, authorization code flow with PKCE.

The identity comes from the userinfo endpoint, read with the access token over TLS
straight from Google, so the ID token's signature need not be checked here (OpenID
Connect Core 5.3). `sub` is the subject; `email_verified` is Google's own word.
"""

from __future__ import annotations

from adapters.oauth import endpoints
from adapters.oauth.client import HttpOAuthProvider, text
from core.identity.oauth_errors import OAuthFailedError
from core.identity.oauth_model import ProviderIdentity

AUTHORIZE_URL = endpoints.GOOGLE_AUTHORIZE_URL
TOKEN_URL = endpoints.GOOGLE_TOKEN_URL
USERINFO_URL = endpoints.GOOGLE_USERINFO_URL
SCOPE = endpoints.GOOGLE_SCOPE


def _flag(value: object) -> bool:
    # Userinfo gives a JSON boolean; some ID-token-derived answers give "true".
    return value is True or value == "true"


class GoogleOAuthProvider(HttpOAuthProvider):
    """`OAuthProvider` for Google (contract: the port)."""

    def _extra_authorization_params(self) -> dict[str, str]:
        # Let people with several Google accounts pick one instead of signing in with
        # whichever happens to be active.
        return {"prompt": "select_account"}

    async def _identity(self, access_token: str) -> ProviderIdentity:
        info = await self._get_json(
            self._config.userinfo_url, access_token, accept="application/json"
        )
        if not isinstance(info, dict):
            raise OAuthFailedError()
        subject = text(info.get("sub"))
        if subject is None or len(subject) > 255:
            raise OAuthFailedError()
        email = text(info.get("email"))
        return ProviderIdentity(
            provider=self.name,
            subject=subject,
            email=email,
            email_verified=email is not None and _flag(info.get("email_verified")),
            display_name=text(info.get("name")),
            login=None,
        )

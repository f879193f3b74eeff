"""Building the OAuth providers the settings enable (used by the container).

Each enabled provider (client id set) gets its redirect URI from
`settings.oauth.callback_url(name)`, so the URL sent to the provider and the route that
serves it cannot drift apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from adapters.memory.oauth import InMemoryOAuthProvider
from adapters.oauth.client import ProviderConfig, new_http_client
from adapters.oauth.github import GitHubOAuthProvider
from adapters.oauth.google import GoogleOAuthProvider
from core.identity.oauth import OAuthProviders
from core.identity.oauth_ports import OAuthProvider
from core.shared.ids import TokenGenerator
from entrypoints.bootstrap.settings import Settings


async def oauth_http_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One pooled client per process for every provider, closed at shutdown."""
    client = new_http_client(settings.oauth.timeout_seconds)
    try:
        yield client
    finally:
        await client.aclose()


def _config(settings: Settings, name: str) -> ProviderConfig:
    o = settings.oauth
    p = o.providers()[name]
    assert p.client_id is not None
    return ProviderConfig(
        name=name,
        client_id=p.client_id,
        client_secret=p.client_secret.get_secret_value() if p.client_secret else "",
        redirect_uri=o.callback_url(name),
        authorize_url=p.authorize_url,
        token_url=p.token_url,
        userinfo_url=p.userinfo_url,
        scope=p.scope,
        timeout_seconds=o.timeout_seconds,
    )


def http_oauth_providers(settings: Settings, http: httpx.AsyncClient) -> OAuthProviders:
    found: list[OAuthProvider] = []
    if settings.oauth.github.enabled:
        found.append(
            GitHubOAuthProvider(
                _config(settings, "github"), http, emails_url=settings.oauth.github.emails_url
            )
        )
    if settings.oauth.google.enabled:
        found.append(GoogleOAuthProvider(_config(settings, "google"), http))
    return OAuthProviders(found)


def memory_oauth_providers(settings: Settings, tokens: TokenGenerator) -> OAuthProviders:
    found: list[OAuthProvider] = []
    for name, p in settings.oauth.providers().items():
        if p.enabled:
            config = _config(settings, name)
            found.append(
                InMemoryOAuthProvider(
                    name,
                    client_id=config.client_id,
                    redirect_uri=config.redirect_uri,
                    authorize_url=config.authorize_url,
                    tokens=tokens,
                    scope=config.scope,
                )
            )
    return OAuthProviders(found)

"""OAuth sign-in: a real provider, reached and answered over https only."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from entrypoints.bootstrap.oauth_settings import GitHubOAuthSettings, OAuthProviderSettings
from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule
from entrypoints.bootstrap.settings import Settings

# The names of `OAuthSettings.providers()`, which are its fields' names too (a test keeps
# them equal, so a provider added there is declared here).
PROVIDERS = ("github", "google")
# URLs every provider has; `_endpoint_urls` adds each provider's own.
_COMMON_ENDPOINTS = ("authorize_url", "token_url", "userinfo_url")

_BACKEND = "oauth.backend"
_REDIRECT_BASE_URL = "oauth.redirect_base_url"
# A provider is enabled by its client id.
_CLIENT_IDS = tuple(f"oauth.{name}.client_id" for name in PROVIDERS)
_ENDPOINTS = (
    *(f"oauth.{name}.{url}" for name in PROVIDERS for url in _COMMON_ENDPOINTS),
    "oauth.github.emails_url",
)


def _enabled_providers(settings: Settings) -> dict[str, OAuthProviderSettings]:
    return {name: p for name, p in settings.oauth.providers().items() if p.enabled}


def _endpoint_urls(name: str, provider: OAuthProviderSettings) -> list[tuple[str, str]]:
    """(setting path, URL) of each endpoint the provider is reached at."""
    urls = [
        (f"oauth.{name}.authorize_url", provider.authorize_url),
        (f"oauth.{name}.token_url", provider.token_url),
        (f"oauth.{name}.userinfo_url", provider.userinfo_url),
    ]
    if isinstance(provider, GitHubOAuthSettings):
        urls.append((f"oauth.{name}.emails_url", provider.emails_url))
    return urls


@rule(_BACKEND, *_CLIENT_IDS)
def oauth_fake_provider(settings: Settings) -> Iterator[Finding]:
    # The in-process fake approves whatever a test tells it: anyone as anyone.
    if _enabled_providers(settings) and settings.oauth.backend == "memory":
        yield error(
            "oauth.memory",
            _BACKEND,
            f"{env_var(_BACKEND)}=memory signs in with a fake provider that lets "
            "anyone sign in as anyone; set it to http",
        )


@rule(_REDIRECT_BASE_URL, *_CLIENT_IDS, *_ENDPOINTS)
def oauth_urls(settings: Settings) -> Iterator[Finding]:
    # The callback carries the authorization code and the state cookie is Secure (it
    # would never come back over http); provider endpoints get the client secret and
    # hand out access tokens.
    enabled = _enabled_providers(settings)
    if not enabled:
        return
    if urlsplit(settings.oauth.redirect_base_url).scheme != "https":
        yield error(
            "oauth.redirect_not_https",
            _REDIRECT_BASE_URL,
            f"{env_var(_REDIRECT_BASE_URL)} is not https: authorization codes "
            "would come back in the clear (and the Secure state cookie would not)",
        )
    for name, provider in enabled.items():
        for path, url in _endpoint_urls(name, provider):
            if urlsplit(url).scheme != "https":
                yield error(
                    "oauth.endpoint_not_https",
                    path,
                    f"{env_var(path)} is not https: the client secret "
                    "and access tokens would travel in the clear",
                )

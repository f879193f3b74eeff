"""Adapters built from several settings at once (the container's other adapters take
their arguments straight from settings). Each imports its adapter when called, so an
unselected one is never imported."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entrypoints.bootstrap.settings import Settings

if TYPE_CHECKING:
    import httpx

    from core.identity.oauth import OAuthProviders
    from core.shared.ids import TokenGenerator


def password_hasher(settings: Settings) -> Any:
    from adapters.security.argon2 import Argon2PasswordHasher

    p = settings.passwords
    return Argon2PasswordHasher(
        time_cost=p.argon2_time_cost,
        memory_cost_kib=p.argon2_memory_kib,
        parallelism=p.argon2_parallelism,
        max_concurrency=p.max_concurrent_hashes,
        allow_weak=p.allow_weak_hashing,
    )


def access_token_codec(settings: Settings) -> Any:
    from adapters.security.jwt import PyJwtAccessTokenCodec

    t = settings.tokens
    return PyJwtAccessTokenCodec(
        settings.secret(),
        issuer=t.issuer,
        audience=t.audience,
        algorithm=t.algorithm,
        leeway_seconds=t.leeway_seconds,
    )


def smtp_sender(settings: Settings) -> Any:
    from adapters.smtp.sender import SmtpEmailSender

    s = settings.smtp
    return SmtpEmailSender(
        s.host,
        s.port,
        username=s.username,
        password=s.password.get_secret_value() if s.password else None,
        starttls=s.starttls,
        use_tls=s.use_tls,
        timeout=s.timeout_seconds,
        sender_address=settings.email.from_address,
    )


# --- OAuth: each enabled provider (client id set) gets its redirect URI from
# `settings.oauth.callback_url(name)`, so the URL sent to the provider and the route that
# serves it cannot drift apart.


def _provider_config(settings: Settings, name: str) -> Any:
    from adapters.oauth.client import ProviderConfig

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
    from adapters.oauth.github import GitHubOAuthProvider
    from adapters.oauth.google import GoogleOAuthProvider
    from core.identity.oauth import OAuthProviders

    found: list[Any] = []
    if settings.oauth.github.enabled:
        github = _provider_config(settings, "github")
        found.append(GitHubOAuthProvider(github, http, emails_url=settings.oauth.github.emails_url))
    if settings.oauth.google.enabled:
        found.append(GoogleOAuthProvider(_provider_config(settings, "google"), http))
    return OAuthProviders(found)


def memory_oauth_providers(settings: Settings, tokens: TokenGenerator) -> OAuthProviders:
    from adapters.memory.oauth import InMemoryOAuthProvider
    from core.identity.oauth import OAuthProviders

    found: list[Any] = []
    for name, p in settings.oauth.providers().items():
        if p.enabled:
            config = _provider_config(settings, name)
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


def webhook_secret(settings: Settings) -> str:
    """The webhook signing secret: the configured one, or (fake gateway only) a random
    one for this process, which signs and checks its own events."""
    configured = settings.stripe.webhook_secret
    if configured is not None:
        return configured.get_secret_value()
    import secrets

    return f"whsec_{secrets.token_urlsafe(32)}"

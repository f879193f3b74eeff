"""OAuth sign-in settings (`PORTICO_OAUTH__...`), nested as `Settings.oauth`.

A provider is enabled when its client id is set. Every endpoint URL can be pointed
elsewhere (tests point them at a local fake provider).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from adapters.oauth import endpoints

# Our callback, relative to `redirect_base_url`; register `<base><this>` at the provider.
OAUTH_CALLBACK_PATH = "/api/v1/auth/oauth/{provider}/callback"
_HTTP_URL = r"^https?://[^\s/?#]+(/[^\s?#]*)?(\?[^\s#]*)?$"
_BASE_URL = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"


class OAuthProviderSettings(BaseModel):
    client_id: str | None = Field(None, min_length=1, max_length=256)
    client_secret: SecretStr | None = None
    authorize_url: str = Field(pattern=_HTTP_URL)
    token_url: str = Field(pattern=_HTTP_URL)
    userinfo_url: str = Field(pattern=_HTTP_URL)
    scope: str = Field(min_length=1, max_length=500)

    @property
    def enabled(self) -> bool:
        return bool(self.client_id)


class GitHubOAuthSettings(OAuthProviderSettings):
    authorize_url: str = Field(endpoints.GITHUB_AUTHORIZE_URL, pattern=_HTTP_URL)
    token_url: str = Field(endpoints.GITHUB_TOKEN_URL, pattern=_HTTP_URL)
    userinfo_url: str = Field(endpoints.GITHUB_USER_URL, pattern=_HTTP_URL)
    # Lists the addresses with their verification state (needs the `user:email` scope).
    emails_url: str = Field(endpoints.GITHUB_EMAILS_URL, pattern=_HTTP_URL)
    scope: str = Field(endpoints.GITHUB_SCOPE, min_length=1, max_length=500)


class GoogleOAuthSettings(OAuthProviderSettings):
    authorize_url: str = Field(endpoints.GOOGLE_AUTHORIZE_URL, pattern=_HTTP_URL)
    token_url: str = Field(endpoints.GOOGLE_TOKEN_URL, pattern=_HTTP_URL)
    userinfo_url: str = Field(endpoints.GOOGLE_USERINFO_URL, pattern=_HTTP_URL)
    scope: str = Field(endpoints.GOOGLE_SCOPE, min_length=1, max_length=500)


class OAuthSettings(BaseModel):
    # `http` talks to the real providers; `memory` is a fake provider in process that
    # lets anyone sign in as anyone (tests, demos; refused in production).
    backend: Literal["http", "memory"] = "http"
    # The API's public base URL; the callback is base + OAUTH_CALLBACK_PATH.
    redirect_base_url: str = Field("http://127.0.0.1:8000", pattern=_BASE_URL)
    # Where the browser lands after a successful sign-in: accounts.frontend_url + this.
    success_path: str = Field("/", pattern=r"^/[^\s#]*$")
    # Per network step (connect, read, ...); one whole sign-in gets three times this.
    timeout_seconds: float = Field(10.0, gt=0, le=60)
    # How long a started sign-in may take at the provider (the state cookie's lifetime).
    state_max_age_seconds: int = Field(600, ge=60, le=3600)
    github: GitHubOAuthSettings = Field(default_factory=GitHubOAuthSettings)
    google: GoogleOAuthSettings = Field(default_factory=GoogleOAuthSettings)

    @model_validator(mode="after")
    def _secrets_for_real_providers(self) -> OAuthSettings:
        if self.backend == "http":
            for name, provider in self.providers().items():
                if provider.enabled and provider.client_secret is None:
                    raise ValueError(f"oauth.{name}.client_secret is required with a client id")
        return self

    def providers(self) -> dict[str, OAuthProviderSettings]:
        return {"github": self.github, "google": self.google}

    def callback_url(self, provider: str) -> str:
        return self.redirect_base_url.rstrip("/") + OAUTH_CALLBACK_PATH.format(provider=provider)

"""Browser sessions and bearer tokens: cookie flags, lifetimes, where sessions live."""

from __future__ import annotations

from collections.abc import Iterator

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule, warning
from entrypoints.bootstrap.settings import Settings

MAX_SESSION_IDLE_SECONDS = 8 * 3600
MAX_SESSION_ABSOLUTE_SECONDS = 30 * 24 * 3600
# Bearer tokens: an access token cannot be revoked before it expires; a refresh token
# family lives as long as a browser session at most, give or take.
MAX_ACCESS_TOKEN_SECONDS = 3600
MAX_REFRESH_TOKEN_SECONDS = 90 * 24 * 3600

_COOKIE_SECURE = "sessions.cookie_secure"
_IDLE = "sessions.idle_timeout_seconds"
_ABSOLUTE = "sessions.absolute_lifetime_seconds"
_BACKEND = "sessions.backend"
_ACCESS_TTL = "tokens.access_ttl_seconds"
_REFRESH_TTL = "tokens.refresh_ttl_seconds"


# `Settings.cookie_secure` resolves `sessions.cookie_secure` by `env`.
@rule(_COOKIE_SECURE, "env")
def cookie_secure(settings: Settings) -> Iterator[Finding]:
    # `settings` is evaluated as production here, so an unset value resolves to True and
    # only an explicit false lands here.
    if not settings.cookie_secure:
        yield error(
            "sessions.cookie_insecure",
            _COOKIE_SECURE,
            f"{env_var(_COOKIE_SECURE)} is false: session cookies would travel "
            "over plain HTTP and lose the __Host- prefix; remove it or set it to true",
        )


@rule(_IDLE)
def session_idle_timeout(settings: Settings) -> Iterator[Finding]:
    idle = settings.sessions.idle_timeout_seconds
    if idle > MAX_SESSION_IDLE_SECONDS:
        yield error(
            "sessions.idle_timeout_too_long",
            _IDLE,
            f"{env_var(_IDLE)} is {idle}s: an unattended "
            f"browser stays signed in too long; use at most {MAX_SESSION_IDLE_SECONDS}s (8 h)",
        )


@rule(_ABSOLUTE)
def session_absolute_lifetime(settings: Settings) -> Iterator[Finding]:
    lifetime = settings.sessions.absolute_lifetime_seconds
    if lifetime > MAX_SESSION_ABSOLUTE_SECONDS:
        yield error(
            "sessions.absolute_lifetime_too_long",
            _ABSOLUTE,
            f"{env_var(_ABSOLUTE)} is {lifetime}s: a stolen "
            f"session stays usable too long; use at most {MAX_SESSION_ABSOLUTE_SECONDS}s "
            "(30 days)",
        )


@rule(_BACKEND)
def session_store(settings: Settings) -> Iterator[Finding]:
    # In-memory sessions vanish at restart and are not shared between processes, so a
    # load balancer would log users out at random and logout would not reach the others.
    if settings.sessions.backend == "memory":
        yield error(
            "sessions.memory_store",
            _BACKEND,
            f"{env_var(_BACKEND)}=memory keeps sessions in one process (lost "
            "at restart, invisible to other processes); set it to redis",
        )


@rule(_ACCESS_TTL, _REFRESH_TTL)
def token_lifetimes(settings: Settings) -> Iterator[Finding]:
    # Warnings, not errors: the settings' own bounds already stop the absurd values, and
    # between those bounds the trade-off (fewer logins vs. a longer window for a stolen
    # token) is the product's call.
    access = settings.tokens.access_ttl_seconds
    if access > MAX_ACCESS_TOKEN_SECONDS:
        yield warning(
            "tokens.access_ttl_too_long",
            _ACCESS_TTL,
            f"{env_var(_ACCESS_TTL)} is {access}s: a stolen access token "
            f"stays valid that long, logout or not; prefer at most {MAX_ACCESS_TOKEN_SECONDS}s",
        )
    refresh = settings.tokens.refresh_ttl_seconds
    if refresh > MAX_REFRESH_TOKEN_SECONDS:
        yield warning(
            "tokens.refresh_ttl_too_long",
            _REFRESH_TTL,
            f"{env_var(_REFRESH_TTL)} is {refresh}s: an unused device "
            f"stays signed in that long; prefer at most {MAX_REFRESH_TOKEN_SECONDS}s (90 days)",
        )

"""The HTTP edge: trusted and CORS origins, proxies, links to the front end, the docs UI."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from urllib.parse import urlsplit

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule, warning
from entrypoints.bootstrap.settings import Settings

_TRUSTED_ORIGINS = "http.trusted_origins"
_CORS_ORIGINS = "http.cors_origins"
_TRUSTED_PROXIES = "http.trusted_proxies"
_DOCS = "http.docs_enabled"
_FRONTEND_URL = "accounts.frontend_url"


def _bad_origin(origin: str) -> str | None:
    if "*" in origin:
        return "a wildcard"
    if origin.strip().lower() == "null":
        # Sandboxed iframes and file:// pages send `Origin: null`: anyone can.
        return "the `null` origin"
    parts = urlsplit(origin)
    if parts.scheme != "https":
        return "a non-https origin"
    return None


@rule(_TRUSTED_ORIGINS)
def trusted_origins(settings: Settings) -> Iterator[Finding]:
    problems = sorted({p for o in settings.http.trusted_origins if (p := _bad_origin(o))})
    if problems:
        yield error(
            "http.trusted_origins",
            _TRUSTED_ORIGINS,
            f"{env_var(_TRUSTED_ORIGINS)} contains {', '.join(problems)}: only list exact "
            "https:// origins of your own front ends",
        )


@rule(_CORS_ORIGINS)
def cors_origins(settings: Settings) -> Iterator[Finding]:
    # A wildcard lets any site's scripts call the API from its visitors' browsers; the
    # listed origins get credentials, so each must be an exact https origin.
    problems = sorted({p for o in settings.http.cors_origins if (p := _bad_origin(o))})
    if problems:
        yield error(
            "http.cors_origins",
            _CORS_ORIGINS,
            f"{env_var(_CORS_ORIGINS)} contains {', '.join(problems)}: only list exact "
            "https:// origins of your own front ends",
        )


@rule(_FRONTEND_URL)
def frontend_url(settings: Settings) -> Iterator[Finding]:
    # Verification and reset links carry live tokens; over http they can be read in transit.
    if urlsplit(settings.accounts.frontend_url).scheme != "https":
        yield error(
            "accounts.frontend_url_not_https",
            _FRONTEND_URL,
            f"{env_var(_FRONTEND_URL)} is not https: links in verification "
            "and password-reset mail carry live tokens",
        )


@rule(_TRUSTED_PROXIES)
def trusted_proxies(settings: Settings) -> Iterator[Finding]:
    # Trusting everyone lets any client write its own address into X-Forwarded-For and
    # so pick a fresh rate-limit key (and a fake audit address) on every request.
    for item in settings.http.trusted_proxies:
        if ipaddress.ip_network(item, strict=False).prefixlen == 0:
            yield error(
                "http.trust_every_proxy",
                _TRUSTED_PROXIES,
                f"{env_var(_TRUSTED_PROXIES)} contains {item}, which trusts every "
                "client's X-Forwarded-For; list your proxies' addresses only",
            )


@rule(_DOCS)
def docs_enabled(settings: Settings) -> Iterator[Finding]:
    # Not a vulnerability by itself (the API is public anyway), but it maps the attack
    # surface for anyone; many deployments want it, so only a warning.
    if settings.http.docs_enabled:
        yield warning(
            "http.docs_enabled",
            _DOCS,
            f"interactive API docs are served at /docs; set {env_var(_DOCS)}"
            "=false unless they are meant to be public",
        )

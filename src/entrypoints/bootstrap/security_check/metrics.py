"""`/metrics`: who may read it (the metrics name routes, volumes, users' activity)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule
from entrypoints.bootstrap.settings import Settings

_TOKEN = "metrics.token"
_NETWORKS = "metrics.allowed_networks"
# A scrape token is a password nobody types: as long as a generated one.
MIN_METRICS_TOKEN_LENGTH = 32


@rule(_TOKEN, _NETWORKS)
def metrics_protection(settings: Settings) -> Iterator[Finding]:
    token = settings.metrics.token
    networks = settings.metrics.allowed_networks
    if token is None and not networks:
        yield error(
            "metrics.unprotected",
            _TOKEN,
            f"/metrics is open to anyone: set {env_var(_TOKEN)} (a bearer token for the "
            f"scraper) and/or {env_var(_NETWORKS)} (the scrapers' networks)",
        )
    if token is not None and len(token.get_secret_value()) < MIN_METRICS_TOKEN_LENGTH:
        yield error(
            "metrics.token_short",
            _TOKEN,
            f"{env_var(_TOKEN)} is shorter than {MIN_METRICS_TOKEN_LENGTH} characters; "
            "generate one (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
        )
    for item in networks:
        if ipaddress.ip_network(item, strict=False).prefixlen == 0:
            yield error(
                "metrics.every_network",
                _NETWORKS,
                f"{env_var(_NETWORKS)} contains {item}, which lets every address read "
                "/metrics; list your scrapers' networks only",
            )

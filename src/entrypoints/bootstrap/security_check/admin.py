"""The admin panel: reachable only from the networks operators list."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule
from entrypoints.bootstrap.settings import Settings

_NETWORKS = "admin.allowed_networks"


@rule("admin.enabled", _NETWORKS)
def admin_networks(settings: Settings) -> Iterator[Finding]:
    if not settings.admin.enabled:
        return
    networks = settings.admin.allowed_networks
    if not networks:
        yield error(
            "admin.allowed_networks_missing",
            _NETWORKS,
            f"the admin panel is enabled for every address: set {env_var(_NETWORKS)} to "
            "your operators' networks (CIDR), or PORTICO_ADMIN__ENABLED=false",
        )
        return
    for item in networks:
        if ipaddress.ip_network(item, strict=False).prefixlen == 0:
            yield error(
                "admin.allowed_networks_everyone",
                _NETWORKS,
                f"{env_var(_NETWORKS)} contains {item}, which allows every address",
            )

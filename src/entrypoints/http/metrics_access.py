"""Who may read `/metrics` (`PORTICO_METRICS__TOKEN`, `PORTICO_METRICS__ALLOWED_NETWORKS`).

- A client address in one of the allowed networks is let in. The address is the ASGI
  scope's client, which `PORTICO_HTTP__TRUSTED_PROXIES` (uvicorn's proxy-headers layer,
  outermost) has already set from `X-Forwarded-For` when the peer is a trusted proxy.
- Otherwise `Authorization: Bearer <token>` equal to the configured token (compared in
  constant time) lets the scraper in.
- Neither configured: anyone (outside production; the production check refuses it).

A refusal is a problem response before anything is rendered: 401 with a `Bearer`
challenge when a token is configured (a scraper without it, or with a wrong one), 403
when only networks are (no credential could help).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from core.shared.hashing import constant_time_equals
from entrypoints.bootstrap.http_settings import MetricsSettings
from entrypoints.http.errors import problem_response

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
METRICS_CHALLENGE = 'Bearer realm="metrics"'


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    """The `/metrics` guard of one app, built once from its settings."""

    token: str | None
    networks: tuple[IpNetwork, ...]

    @classmethod
    def from_settings(cls, settings: MetricsSettings) -> MetricsAccess:
        token = settings.token.get_secret_value() if settings.token is not None else None
        return cls(token, _networks(settings.allowed_networks))

    @property
    def open(self) -> bool:
        return self.token is None and not self.networks

    def refusal(self, request: Request) -> Response | None:
        """None when `request` may read the metrics, else the problem to answer."""
        if self.open or self._address_allowed(request):
            return None
        if self.token is None:
            return problem_response(
                403, "metrics_forbidden", "Metrics are not served to this address."
            )
        if constant_time_equals(_bearer(request.headers.get("authorization", "")), self.token):
            return None
        return problem_response(
            401,
            "metrics_unauthorized",
            "Metrics need the scrape token (Authorization: Bearer).",
            headers={"WWW-Authenticate": METRICS_CHALLENGE},
        )

    def _address_allowed(self, request: Request) -> bool:
        if not self.networks or request.client is None:
            return False
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:  # a Unix socket peer, or a test client's name
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
        return any(address in network for network in self.networks)


def _bearer(authorization: str) -> str:
    """The credentials of `Authorization: Bearer <token>`, whatever characters the
    configured token uses (not only RFC 6750's b64token); empty for anything else."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _networks(items: Sequence[str]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)

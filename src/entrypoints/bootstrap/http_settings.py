"""Settings of the HTTP edge: limits, origins (trusted and CORS), proxies, readiness,
and who may read `/metrics` (sections of `Settings`, in `settings.py`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

# What `/ready` probes, by name (each only when configured).
ReadinessDependency = Literal["database", "sessions", "cache", "rate_limit", "broker"]


class HttpSettings(BaseModel):
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Origins (scheme://host[:port]) allowed on unsafe requests besides the API's own origin.
    trusted_origins: list[str] = Field(default_factory=list)
    docs_enabled: bool = True
    # Proxies (addresses or CIDR networks) whose X-Forwarded-For names the client; the
    # rightmost address not in this list is the client (rate limits, audit, sessions).
    trusted_proxies: list[str] = Field(default_factory=list)
    # Browser front ends on other origins that may call the API with credentials (CORS).
    # Empty: no CORS layer at all. `*` allows any origin, never with credentials
    # (development only: the production check refuses it).
    cors_origins: list[str] = Field(default_factory=list)
    # Dependencies `/ready` reports without failing on them (a shared cache or broker
    # that is down would otherwise take every instance out of rotation at once).
    readiness_optional: list[ReadinessDependency] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return check_networks(value)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [normalise_cors_origin(item) for item in value]


def check_networks(value: list[str]) -> list[str]:
    """Addresses or CIDR networks, stripped; ValueError naming the first that is neither."""
    for item in value:
        try:
            ipaddress.ip_network(item.strip(), strict=False)
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or network") from exc
    return [item.strip() for item in value]


_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^\s/?#@]+$")


def normalise_cors_origin(origin: str) -> str:
    """`HTTPS://App.example.com/` -> `https://app.example.com`, as browsers send `Origin`
    (a default port dropped); `*` as it is. ValueError for anything else (a path, a
    query, credentials)."""
    text = origin.strip()
    if text == "*":
        return text
    text = text.lower().rstrip("/")
    if _ORIGIN.match(text) is None:
        raise ValueError(f"{origin!r} is not an origin (scheme://host[:port]) or '*'")
    for scheme, port in (("http", ":80"), ("https", ":443")):
        if text.startswith(f"{scheme}://") and text.endswith(port):
            text = text[: -len(port)]
    return text


class MetricsSettings(BaseModel):
    """Who may read `/metrics`: a bearer token, client networks, or both (either admits).
    Both unset: anyone (outside production; the production check refuses it)."""

    token: SecretStr | None = None
    allowed_networks: list[str] = Field(default_factory=list)

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return check_networks(value)

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # an empty variable (`PORTICO_METRICS__TOKEN=`) means unset
        return value

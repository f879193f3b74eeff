"""URL and address helpers shared by the rules about network connections."""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qs, unquote, urlsplit


def is_loopback(host: str | None) -> bool:
    """True for localhost and loopback addresses: traffic that never leaves the machine."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_credentials(url: str) -> tuple[str | None, str | None]:
    """(username, password) from a URL's userinfo or its `?password=` query parameter."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    password = parts.password
    if password is None and query.get("password"):
        password = query["password"][0]
    username = parts.username
    return (
        unquote(username) if username is not None else None,
        unquote(password) if password is not None else None,
    )

"""Whether a browser request comes from the page's own site: the check the API's CSRF
middleware and the admin panel's guard share."""

from __future__ import annotations

from starlette.types import Scope

from core.shared.hashing import constant_time_equals

# `none`: typed in the address bar, a bookmark. Anything else is another site's page.
SAFE_FETCH_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def normalise_origin(origin: str) -> str:
    """Lower case, no trailing slash, no default port: `https://a.example:443/` and
    `https://A.example` are one origin."""
    origin = origin.strip().lower().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    default = _DEFAULT_PORTS.get(scheme)
    if sep and default and rest.endswith(default):
        rest = rest[: -len(default)]
    return f"{scheme}{sep}{rest}"


def same_origin(scope: Scope, origin: str | None, fetch_site: str | None, host: str | None) -> bool:
    """True unless the browser says another site's page sent this: `Sec-Fetch-Site`,
    when sent, is `same-origin` or `none`, and `Origin`, when sent, is the request's own
    (its scheme and `Host`)."""
    if fetch_site is not None and fetch_site.strip().lower() not in SAFE_FETCH_SITES:
        return False
    if origin is None:
        return True
    if not host:
        return False
    own = normalise_origin(f"{scope.get('scheme', 'http')}://{host}")
    return constant_time_equals(normalise_origin(origin), own)

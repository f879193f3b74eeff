"""Security headers on every answer (applied by `request_context`'s layer).

API answers get a CSP that allows nothing (they are JSON, never rendered), `/docs` gets
the page's own (`docs.DOCS_CSP`: scripts from the app itself, inline styles). `/api`
answers are never cached. HSTS is sent when cookies are Secure (i.e. served over TLS).
"""

from __future__ import annotations

from collections.abc import Iterable

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=63072000; includeSubDomains"


def _raw(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """The headers every answer gets, prepared once as raw pairs, and `apply`, which adds
    them to a response's headers unless the route set its own (the route's value wins),
    except `Cache-Control: no-store`, which `/api` answers always get.

    Applied by the outermost layer (`RequestContextMiddleware`) in the one send wrapper
    it has anyway, so every answer, errors of inner layers and the last-resort 500
    included, gets them for one pass over its headers.
    """

    def __init__(self, *, hsts: bool, docs_path: str = "/docs", docs_csp: str = API_CSP) -> None:
        self.docs_path = docs_path
        common = [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
        ]
        if hsts:
            common.append(("Strict-Transport-Security", HSTS))
        self._api = _raw([*common, ("Content-Security-Policy", API_CSP)])
        self._docs = _raw([*common, ("Content-Security-Policy", docs_csp)])

    def apply(self, path: str, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        defaults = self._docs if path == self.docs_path else self._api
        merged = list(headers)
        present = {name.lower() for name, _ in merged}
        merged.extend(pair for pair in defaults if pair[0] not in present)
        if path.startswith("/api/"):
            if b"cache-control" in present:
                merged = [h for h in merged if h[0].lower() != b"cache-control"]
            merged.append(_NO_STORE)
        return merged

"""Security headers on every answer.

API answers get a CSP that allows nothing (they are JSON, never rendered), `/docs` gets
one that allows exactly its own inline scripts (by hash) and inline styles. `/api`
answers are never cached. HSTS is sent when cookies are Secure (i.e. served over TLS).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=63072000; includeSubDomains"


def docs_csp(script_hashes: list[str]) -> str:
    scripts = " ".join(f"'{h}'" for h in script_hashes) or "'none'"
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'unsafe-inline'; "
        "img-src 'self' data:; "
        "font-src 'self' data:; "
        "connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _raw(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeadersMiddleware:
    """Adds the headers to `http.response.start` unless the route set its own (the
    route's value wins), except `Cache-Control: no-store`, which `/api` answers always
    get. Headers are prepared once as raw pairs: a response costs one pass over its
    headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: bool,
        docs_path: str = "/docs",
        docs_csp: str = API_CSP,
    ) -> None:
        self.app = app
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        defaults = self._docs if path == self.docs_path else self._api
        no_store = path.startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in defaults if pair[0] not in present)
                if no_store:
                    if b"cache-control" in present:
                        headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

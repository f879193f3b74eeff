"""A fake GitHub and Google, strict where it matters: client id and secret, redirect URI,
PKCE (S256 verifier against the challenge), single-use codes, bearer access tokens.

One request handler (`FakeOAuthServer.handle`) serves two transports: `mock_transport`
(httpx, in process, no sockets: unit and contract tests) and `serve` (a threaded HTTP
server on 127.0.0.1 and a random port: integration tests).

Paths, under the server's base URL:
  /github/login/oauth/authorize, /github/login/oauth/access_token, /github/api/user,
  /github/api/user/emails; /google/o/oauth2/v2/auth, /google/token, /google/v1/userinfo
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

GITHUB_PATHS = {
    "authorize_url": "/github/login/oauth/authorize",
    "token_url": "/github/login/oauth/access_token",
    "userinfo_url": "/github/api/user",
    "emails_url": "/github/api/user/emails",
}
GOOGLE_PATHS = {
    "authorize_url": "/google/o/oauth2/v2/auth",
    "token_url": "/google/token",
    "userinfo_url": "/google/v1/userinfo",
}


@dataclass(frozen=True)
class Registration:
    """Our app as registered at the provider."""

    client_id: str
    client_secret: str
    redirect_uri: str


@dataclass(frozen=True)
class Person:
    """Someone with an account at the provider (GitHub wants a numeric subject)."""

    subject: str
    email: str | None
    email_verified: bool = True
    name: str | None = None
    login: str | None = None


@dataclass
class _Grant:
    provider: str
    client_id: str
    redirect_uri: str
    challenge: str
    person: Person


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, value: Any) -> Reply:
    return Reply(status, json.dumps(value).encode(), {"Content-Type": "application/json"})


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class FakeOAuthServer:
    """Both providers. Set `signed_in[provider]` to the person at the consent page.

    `mode`: "ok"; "error" (every API answers 503); "garbage" (HTML with 200);
    "connect" (the transport cannot connect: mock transport only); "slow" (answers
    after `delay` seconds; the mock transport raises a read timeout instead).
    `token_requests` records every token request's form (the verifier included).
    """

    def __init__(self, *, github: Registration, google: Registration) -> None:
        self.registrations = {"github": github, "google": google}
        self.signed_in: dict[str, Person] = {}
        self.mode = "ok"
        self.delay = 0.0
        self.token_requests: list[dict[str, str]] = []
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, tuple[str, Person]] = {}
        self._lock = threading.Lock()

    # --- one handler for both transports -----------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        if self.mode == "slow":
            time.sleep(self.delay)
        if self.mode == "error":
            return _json(503, {"message": "down for maintenance"})
        if self.mode == "garbage":
            return Reply(200, b"<html>proxy error</html>", {"Content-Type": "text/html"})
        form = {k: v[0] for k, v in parse_qs(body.decode("ascii", "replace")).items()}
        routes = {
            ("GET", GITHUB_PATHS["authorize_url"]): lambda: self._authorize("github", query),
            ("POST", GITHUB_PATHS["token_url"]): lambda: self._github_token(form, headers),
            ("GET", GITHUB_PATHS["userinfo_url"]): lambda: self._github_user(headers),
            ("GET", GITHUB_PATHS["emails_url"]): lambda: self._github_emails(headers),
            ("GET", GOOGLE_PATHS["authorize_url"]): lambda: self._authorize("google", query),
            ("POST", GOOGLE_PATHS["token_url"]): lambda: self._google_token(form),
            ("GET", GOOGLE_PATHS["userinfo_url"]): lambda: self._google_userinfo(headers),
        }
        route = routes.get((method, path))
        if route is None:
            return _json(404, {"message": "Not Found"})
        with self._lock:
            return route()

    # --- consent page -------------------------------------------------------------------

    def _authorize(self, provider: str, query: dict[str, str]) -> Reply:
        registration = self.registrations[provider]
        if query.get("client_id") != registration.client_id:
            return Reply(400, b"unknown client")
        if query.get("redirect_uri") != registration.redirect_uri:
            return Reply(400, b"redirect_uri is not registered")
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return Reply(400, b"PKCE S256 is required")
        if not query.get("code_challenge") or not query.get("state") or not query.get("scope"):
            return Reply(400, b"state, scope and code_challenge are required")
        person = self.signed_in.get(provider)
        if person is None:
            back = {"error": "access_denied", "state": query["state"]}
        else:
            code = secrets.token_urlsafe(16)
            self._codes[code] = _Grant(
                provider,
                registration.client_id,
                query["redirect_uri"],
                query["code_challenge"],
                person,
            )
            back = {"code": code, "state": query["state"]}
        return Reply(302, headers={"Location": f"{registration.redirect_uri}?{urlencode(back)}"})

    def _redeem(self, provider: str, form: dict[str, str]) -> tuple[str, Person] | str:
        """An access token for a valid code, else the OAuth error code."""
        registration = self.registrations[provider]
        self.token_requests.append(dict(form))
        if (
            form.get("client_id") != registration.client_id
            or form.get("client_secret") != registration.client_secret
        ):
            return "invalid_client"
        if form.get("grant_type") != "authorization_code":
            return "unsupported_grant_type"
        grant = self._codes.pop(form.get("code", ""), None)  # single use, right or wrong
        if grant is None or grant.provider != provider:
            return "invalid_grant"
        if form.get("redirect_uri") != grant.redirect_uri:
            return "redirect_uri_mismatch"
        if s256(form.get("code_verifier", "")) != grant.challenge:
            return "invalid_grant"
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (provider, grant.person)
        return token, grant.person

    def _bearer(self, provider: str, headers: dict[str, str]) -> Person | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        found = self._tokens.get(token) if scheme.lower() == "bearer" else None
        return found[1] if found and found[0] == provider else None

    # --- GitHub ---------------------------------------------------------------------------

    def _github_token(self, form: dict[str, str], headers: dict[str, str]) -> Reply:
        result = self._redeem("github", form)
        if isinstance(result, str):
            value: dict[str, str] = {"error": result, "error_description": "refused"}
        else:
            value = {"access_token": result[0], "token_type": "bearer", "scope": "user:email"}
        if headers.get("accept") != "application/json":
            # GitHub's default answer is form-encoded, errors included, with a 200.
            return Reply(200, urlencode(value).encode(), {"Content-Type": "text/plain"})
        return _json(200, value)

    def _github_user(self, headers: dict[str, str]) -> Reply:
        if not headers.get("user-agent"):
            return _json(403, {"message": "a User-Agent header is required"})
        person = self._bearer("github", headers)
        if person is None:
            return _json(401, {"message": "Bad credentials"})
        return _json(
            200,
            {
                "id": int(person.subject),
                "login": person.login,
                "name": person.name,
                # The public profile address: not necessarily verified.
                "email": person.email,
            },
        )

    def _github_emails(self, headers: dict[str, str]) -> Reply:
        person = self._bearer("github", headers)
        if person is None:
            return _json(401, {"message": "Bad credentials"})
        emails = [
            {"email": "old-work@example.org", "primary": False, "verified": False},
        ]
        if person.email:
            emails.append(
                {"email": person.email, "primary": True, "verified": person.email_verified}
            )
        return _json(200, emails)

    # --- Google ---------------------------------------------------------------------------

    def _google_token(self, form: dict[str, str]) -> Reply:
        result = self._redeem("google", form)
        if isinstance(result, str):
            status = 401 if result == "invalid_client" else 400
            return _json(status, {"error": result})
        return _json(
            200,
            {
                "access_token": result[0],
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": "openid email profile",
                "id_token": "header.payload.signature",
            },
        )

    def _google_userinfo(self, headers: dict[str, str]) -> Reply:
        person = self._bearer("google", headers)
        if person is None:
            return _json(401, {"error": "invalid_token"})
        info: dict[str, Any] = {"sub": person.subject, "name": person.name}
        if person.email:
            info.update(email=person.email, email_verified=person.email_verified)
        return _json(200, info)

    # --- playing the browser --------------------------------------------------------------

    def consent(self, authorization_url: str) -> str:
        """Open the consent page at `authorization_url` in process: the redirect back."""
        parts = urlsplit(authorization_url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        reply = self.handle("GET", parts.path, query, {}, b"")
        assert reply.status == 302, reply.body
        return reply.headers["Location"]


def code_in(redirect: str) -> str:
    return parse_qs(urlsplit(redirect).query)["code"][0]


def mock_transport(server: FakeOAuthServer) -> httpx.MockTransport:
    """The fake as an httpx transport: no sockets."""

    def handler(request: httpx.Request) -> httpx.Response:
        if server.mode == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if server.mode == "slow":
            raise httpx.ReadTimeout("timed out", request=request)
        query = {k: v for k, v in request.url.params.items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = server.handle(request.method, request.url.path, query, headers, request.content)
        return httpx.Response(reply.status, headers=reply.headers, content=reply.body)

    return httpx.MockTransport(handler)


@contextmanager
def serve(server: FakeOAuthServer) -> Iterator[str]:
    """The fake on 127.0.0.1 and a free port, in a thread; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = server.handle(self.command, parts.path, query, headers, body)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests assert on what matters

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    # A short poll keeps `shutdown` (which waits for the next poll) quick.
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-oauth", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def endpoint_settings(base_url: str, paths: dict[str, str]) -> dict[str, str]:
    """`oauth.<provider>` endpoint settings pointing at the fake."""
    return {name: base_url + path for name, path in paths.items()}

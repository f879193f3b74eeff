"""Live credentials for the API fuzzer: signed-up users with a browser session (cookie and
CSRF token) and a bearer access token, put into each request just before it is sent.

Cases are made before they run (the coverage phase builds its cases when the test is
collected), and the fuzzer's own requests can end the credentials later cases rely on
(logout, logout-all, a password change, account deletion, revoking a session); and
schemathesis restarts the app after every test item, which empties the memory profile's
users and sessions. So the auth providers only put placeholders into a case, and
`Identities.fill` replaces them (or the credentials of an earlier identity) with the
current identity's right before the request. An identity is spent when an operation of
`ENDS_CREDENTIALS` answers 2xx, and replaced when the app has restarted since it signed
up: every authenticated request carries credentials that work (the "auth is never
ignored" check and our `live_credentials_are_honoured` need that).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from schemathesis.python import asgi

# (method, OpenAPI path) of the operations whose success ends a session, a token or a user.
ENDS_CREDENTIALS = frozenset(
    {
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/auth/logout-all"),
        ("POST", "/api/v1/auth/password/change"),
        ("POST", "/api/v1/auth/password/reset-confirm"),
        ("DELETE", "/api/v1/auth/sessions/{session_id}"),
        ("DELETE", "/api/v1/users/me"),
    }
)

# What the auth providers put into a case; `fill` swaps in real values.
SESSION = "placeholder-session"
SESSION_CSRF = "placeholder-session-csrf"
BEARER = "placeholder-bearer"
PRE_SESSION = "placeholder-pre-session"


@dataclass(frozen=True)
class Identity:
    """One signed-up user, signed in twice: as a browser and as an app."""

    session_token: str  # the session cookie's value
    csrf_token: str  # the session's CSRF token
    access_token: str  # bearer


class Identities:
    """The current identity of the fuzzed app, and the swap of placeholders for it.

    Requests go through schemathesis's in-process ASGI client (the event loop and the
    lifespan the fuzzed requests use), without a cookie jar: nothing is remembered
    between calls, so sign-ups and sign-ins are an app's (no CSRF token needed).
    """

    def __init__(self, app: Any, session_cookie: str, pre_session_cookie: str) -> None:
        self.app = app
        self.session_cookie = session_cookie
        self.pre_session_cookie = pre_session_cookie
        self._lock = threading.Lock()
        self._current: Identity | None = None
        self._current_runtime: object = None
        self._pre_session_token: str | None = None
        # Every real credential handed out, to recognise ours in a request.
        self.issued: set[str] = set()

    def fill(self, case: Any) -> None:
        """Put live credentials where the case has placeholders or older credentials."""
        headers = case.headers if case.headers is not None else {}
        cookies = case.cookies if case.cookies is not None else {}
        ours = self.issued | {SESSION, SESSION_CSRF, BEARER, PRE_SESSION}
        bearer = str(headers.get("Authorization", "")).removeprefix("Bearer ")
        session = cookies.get(self.session_cookie)
        pre_session = cookies.get(self.pre_session_cookie)
        if bearer in ours or session in ours:
            identity = self._live()
            if bearer in ours:
                headers["Authorization"] = f"Bearer {identity.access_token}"
            if session in ours:
                cookies[self.session_cookie] = identity.session_token
                if headers.get("X-CSRF-Token") in ours:
                    headers["X-CSRF-Token"] = identity.csrf_token
        if pre_session in ours:
            token = self._pre_session()
            cookies[self.pre_session_cookie] = token
            if headers.get("X-CSRF-Token") in ours:
                headers["X-CSRF-Token"] = token
        case.headers, case.cookies = headers, cookies

    def after(self, case: Any, response: Any) -> None:
        """Spend the current identity when `case` may have ended its credentials."""
        operation = (case.operation.method.upper(), case.operation.path)
        if operation in ENDS_CREDENTIALS and 200 <= response.status_code < 300:
            with self._lock:
                self._current = None

    def _live(self) -> Identity:
        with self._lock:
            runtime = self._runtime()
            if self._current is None or self._current_runtime is not runtime:
                self._current = self._sign_up()
                self._current_runtime = runtime
                current = self._current
                self.issued |= {current.session_token, current.csrf_token, current.access_token}
            return self._current

    def _pre_session(self) -> str:
        """A pre-session CSRF token (also the value of its cookie); it is signed with the
        app's secret, so it outlives restarts of the app."""
        with self._lock:
            if self._pre_session_token is None:
                answer = self._call("GET", "/api/v1/auth/csrf")
                self._pre_session_token = str(answer.json()["csrf_token"])
                self.issued.add(self._pre_session_token)
            return self._pre_session_token

    def _runtime(self) -> object:
        """The app's runtime, started if it is not (schemathesis ends the app's lifespan
        after every test item, so each operation's test gets a fresh app)."""
        with asgi.get_client(self.app):
            return self.app.state.runtime

    def _sign_up(self) -> Identity:
        suffix = uuid.uuid4().hex[:16]
        email = f"fuzz-{suffix}@example.com"
        password = f"Fuzz-{suffix}-passphrase"
        body = {"email": email, "username": f"fuzz_{suffix}", "password": password}
        self._call("POST", "/api/v1/users", json=body)
        credentials = {"email": email, "password": password}
        login = self._call("POST", "/api/v1/auth/login", json=credentials)
        token = self._call("POST", "/api/v1/auth/token", json=credentials).json()
        return Identity(
            session_token=login.cookies[self.session_cookie],
            csrf_token=str(login.json()["csrf_token"]),
            access_token=str(token["access_token"]),
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        with asgi.get_client(self.app) as client:
            client.cookies.clear()
            response = client.request(method, path, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code}"
        return response

"""Bearer clients for the HTTP suite: a mobile app that never sends cookies nor CSRF
tokens, and a user signed in both ways (browser session and bearer tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any

from starlette.testclient import TestClient

from tests.unit.http.support import Browser, Credentials

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
REVOKE = "/api/v1/auth/token/revoke"
ME = "/api/v1/users/me"


class MobileApp:
    """A bearer client: never sends cookies, never sends a CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.credentials: Credentials | None = None
        self.access: str | None = None
        self.refresh_token: str | None = None

    def request(
        self,
        method: str,
        url: str,
        *,
        bearer: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        sent = dict(headers or {})
        token = bearer if bearer is not None else self.access
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        self.client.cookies = CookieJar()  # type: ignore[assignment]  # no cookies at all
        return self.client.request(method, url, headers=sent, **kwargs)

    def sign_in(self, credentials: Credentials) -> Any:
        response = self.request(
            "POST",
            TOKEN,
            bearer="",
            json={"email": credentials.email, "password": credentials.password},
        )
        if response.status_code == 200:
            self.credentials = credentials
            self.access = response.json()["access_token"]
            self.refresh_token = response.json()["refresh_token"]
        return response

    def refresh(self, refresh_token: str | None = None) -> Any:
        response = self.request(
            "POST", REFRESH, bearer="", json={"refresh_token": refresh_token or self.refresh_token}
        )
        if response.status_code == 200 and refresh_token is None:
            self.access = response.json()["access_token"]
            self.refresh_token = response.json()["refresh_token"]
        return response

    def me(self, bearer: str | None = None) -> Any:
        return self.request("GET", ME, bearer=bearer)


@dataclass
class Signed:
    browser: Browser
    credentials: Credentials
    app: MobileApp


def sign_in_twice(client: TestClient) -> Signed:
    """A new user signed in twice: a browser session and a mobile app."""
    browser = Browser(client)
    credentials = browser.signup()
    app = MobileApp(client)
    assert app.sign_in(credentials).status_code == 200
    return Signed(browser, credentials, app)


def new_app(client: TestClient, credentials: Credentials) -> MobileApp:
    app = MobileApp(client)
    assert app.sign_in(credentials).status_code == 200
    return app


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_token"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge

"""Accounts for the load, made through Portico's real API (as the README's curl session).

`GET /api/v1/auth/csrf` gives a pre-session token and its cookie; registration and login
send both (`X-CSRF-Token` header, cookie); a login answers the session cookie; a bearer
sign-in (`POST /api/v1/auth/token`) answers an access token. Every step checks its status
so a broken setup stops the bench instead of measuring error pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "bench passphrase: correct horse battery"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str

    def header(self) -> str:
        return f"{self.name}={self.value}"


@dataclass(frozen=True)
class PreSession:
    """A pre-session CSRF token and the cookie it must travel with (reusable until it
    expires, so a stream of logins can send the same pair)."""

    token: str
    cookie: Cookie


@dataclass(frozen=True)
class Account:
    email: str
    username: str
    password: str = PASSWORD

    def credentials_json(self) -> str:
        return json.dumps({"email": self.email, "password": self.password})


class PorticoApi:
    """A small client of Portico's account endpoints. Each call sends exactly the cookies
    it is given: nothing a previous answer set carries over."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=30)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self._http.cookies.clear()
        return self._http.request(method, path, **kwargs)

    def pre_session(self) -> PreSession:
        response = self._request("GET", "/api/v1/auth/csrf")
        _expect(response, 200, "GET /api/v1/auth/csrf")
        cookies = list(response.cookies.items())
        if len(cookies) != 1:
            raise RuntimeError(f"GET /api/v1/auth/csrf set {len(cookies)} cookies, not 1")
        return PreSession(response.json()["csrf_token"], Cookie(*cookies[0]))

    def register(self, account: Account, pre: PreSession) -> None:
        body = {"email": account.email, "username": account.username, "password": account.password}
        response = self._request(
            "POST", "/api/v1/users", json=body, headers=_pre_session_headers(pre)
        )
        _expect(response, 201, "POST /api/v1/users")

    def login(self, account: Account, pre: PreSession) -> Cookie:
        """Log in; the session cookie the answer sets."""
        response = self._request(
            "POST",
            "/api/v1/auth/login",
            content=account.credentials_json(),
            headers={**_pre_session_headers(pre), "Content-Type": "application/json"},
        )
        _expect(response, 200, "POST /api/v1/auth/login")
        cookies = list(response.cookies.items())
        if len(cookies) != 1:
            raise RuntimeError(f"POST /api/v1/auth/login set {len(cookies)} cookies, not 1")
        return Cookie(*cookies[0])

    def access_token(self, account: Account) -> str:
        response = self._request(
            "POST",
            "/api/v1/auth/token",
            content=account.credentials_json(),
            headers={"Content-Type": "application/json"},
        )
        _expect(response, 200, "POST /api/v1/auth/token")
        token: str = response.json()["access_token"]
        return token

    def post_json(
        self, path: str, body: object, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return self._request("POST", path, json=body, headers=headers or {})

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._request("GET", path, headers=headers or {})


def _pre_session_headers(pre: PreSession) -> dict[str, str]:
    return {CSRF_HEADER: pre.token, "Cookie": pre.cookie.header()}


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise RuntimeError(f"{what} answered {response.status_code}: {response.text[:500]}")

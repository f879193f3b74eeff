"""Helpers for the HTTP suite: browsers with their own cookie jars, and a response checker
that every response of the suite goes through."""

from __future__ import annotations

import importlib
import pkgutil
import re
import uuid
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any

from pydantic import BaseModel
from starlette.testclient import TestClient

from entrypoints.http import schemas
from entrypoints.http.schemas.problem import Problem

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# What must never be in an answer: password hashes, the field that holds them, tracebacks.
FORBIDDEN_IN_BODIES = ("$argon2", "password_hash", "Traceback", 'File "')


@dataclass(frozen=True)
class Credentials:
    email: str
    username: str
    password: str

    def as_json(self) -> dict[str, str]:
        return {"email": self.email, "username": self.username, "password": self.password}


def new_credentials() -> Credentials:
    """Unique per call, so tests sharing a database (services profile) never collide."""
    suffix = uuid.uuid4().hex[:12]
    return Credentials(
        email=f"user-{suffix}@example.com",
        username=f"user_{suffix}",
        password=f"Correct-horse-{suffix}-battery",
    )


class Browser:
    """One user agent: its own cookie jar, sharing the app's TestClient (and event loop).

    Unsafe requests carry the session's CSRF token once logged in, unless `csrf=False`.
    Like a real browser on the API's own pages, every request says `Sec-Fetch-Site:
    same-origin` and unsafe ones carry the API's `Origin`, unless the test sets either
    header itself (then only what the test sets is sent): so a fresh browser without
    cookies is still a browser to the CSRF check.
    """

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.jar = CookieJar()
        self.csrf: str | None = None
        self.credentials: Credentials | None = None

    @property
    def cookie_name(self) -> str:
        return self.client.app.state.settings.session_cookie_name  # type: ignore[attr-defined]

    def request(
        self,
        method: str,
        url: str,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        sent = dict(headers or {})
        if not {name.lower() for name in sent} & {"origin", "sec-fetch-site"}:
            sent["Sec-Fetch-Site"] = "same-origin"
            if method.upper() not in SAFE_METHODS:
                base = self.client.base_url
                sent["Origin"] = f"{base.scheme}://{base.netloc.decode('ascii')}"
        if csrf and self.csrf and method.upper() not in SAFE_METHODS:
            sent.setdefault("X-CSRF-Token", self.csrf)
        self.client.cookies = self.jar  # type: ignore[assignment]  # shares the jar
        return self.client.request(method, url, headers=sent, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.request("DELETE", url, **kwargs)

    # --- flows ---------------------------------------------------------------------------

    def pre_session_token(self) -> str:
        response = self.get("/api/v1/auth/csrf")
        assert response.status_code == 200, response.text
        return str(response.json()["csrf_token"])

    def register(self, credentials: Credentials | dict[str, Any]) -> Any:
        body = credentials.as_json() if isinstance(credentials, Credentials) else credentials
        token = self.pre_session_token()
        return self.post("/api/v1/users", json=body, headers={"X-CSRF-Token": token}, csrf=False)

    def login(self, email: str, password: str) -> Any:
        token = self.pre_session_token()
        response = self.post(
            "/api/v1/auth/login",
            json={"email": email, "password": password},
            headers={"X-CSRF-Token": token},
            csrf=False,
        )
        if response.status_code == 200:
            self.csrf = response.json()["csrf_token"]
        return response

    def signup(self, credentials: Credentials | None = None) -> Credentials:
        credentials = credentials or new_credentials()
        registered = self.register(credentials)
        assert registered.status_code == 201, registered.text
        self.login_as(credentials)
        return credentials

    def login_as(self, credentials: Credentials) -> Any:
        response = self.login(credentials.email, credentials.password)
        assert response.status_code == 200, response.text
        self.credentials = credentials
        return response

    @property
    def session_cookie(self) -> str | None:
        for cookie in self.jar:
            if cookie.name == self.cookie_name:
                return cookie.value
        return None

    def me(self) -> Any:
        return self.get("/api/v1/users/me")


def _schema_models() -> dict[str, type[BaseModel]]:
    """Component name -> pydantic model, for every model the schemas package defines."""
    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(schemas.__path__):
        module = importlib.import_module(f"{schemas.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
                found[value.__name__] = value
    return found


SCHEMA_MODELS = _schema_models()
Operation = tuple[re.Pattern[str], str, dict[str, Any]]


class ResponseChecker:
    """Runs on every response of the suite (an httpx response hook).

    - no password hash, hash field name or traceback in any body;
    - every answer has an X-Request-ID;
    - every problem body is a valid Problem whose `status` is the HTTP status;
    - every status an API operation answers is documented in /openapi.json for it, with
      the documented media type, and the body validates against the documented model
      with no undocumented top-level field (response validation, in tests only).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._operations: list[Operation] | None = None

    def __call__(self, response: Any) -> None:
        response.read()
        body = response.text
        for forbidden in FORBIDDEN_IN_BODIES:
            assert forbidden not in body, f"{forbidden!r} leaked in {response.request.url}"
        assert response.headers.get("x-request-id"), "every answer carries X-Request-ID"
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            problem = Problem.model_validate_json(body)
            assert problem.status == response.status_code
            assert re.fullmatch(r"[a-z][a-z0-9_]*", problem.code)
        self._check_documented(response)

    def _check_documented(self, response: Any) -> None:
        method = response.request.method.lower()
        path = response.request.url.path
        for pattern, op_method, answers in self.operations():
            if op_method == method and pattern.match(path):
                status = str(response.status_code)
                assert status in answers, (
                    f"{method.upper()} {path} answered {status}, documented: {sorted(answers)}"
                )
                self._check_body(response, answers[status])
                return

    def _check_body(self, response: Any, answer: dict[str, Any]) -> None:
        content = answer.get("content") or {}
        if not content:
            assert not response.content, "documented without a body"
            return
        media_type = response.headers.get("content-type", "").split(";")[0]
        assert media_type in content, f"{media_type} not in documented {sorted(content)}"
        ref = content[media_type].get("schema", {}).get("$ref")
        if ref is None:
            return
        model = SCHEMA_MODELS[ref.rsplit("/", 1)[-1]]
        model.model_validate_json(response.content)
        if model is not Problem:
            extra = set(response.json()) - set(model.model_fields)
            assert not extra, f"undocumented fields {sorted(extra)}"

    def operations(self) -> list[Operation]:
        if self._operations is None:
            document = self.app.state.api_document()
            self._operations = [
                (
                    re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"),
                    method,
                    operation["responses"],
                )
                for path, operations in document["paths"].items()
                for method, operation in operations.items()
            ]
        return self._operations

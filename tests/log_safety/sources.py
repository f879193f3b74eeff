"""Hooks that put every secret a test makes, uses or is handed into the registry.

Installed for the whole session by the plugin (through a `MonkeyPatch`, undone at the
end), at the places every secret passes whatever the test does:

- `pydantic.SecretStr`/`SecretBytes`: every secret setting (API keys, webhook secrets,
  the secret key, SMTP and metrics credentials, OAuth client secrets).
- the `PasswordHasher` adapters: every password hashed or checked.
- the `TokenGenerator` adapters: session ids, CSRF tokens, refresh and one-time tokens
  (the ones mails carry), OAuth state and verifiers.
- httpx's and httpx2's (the TestClient's) `send`: credentials sent (Authorization,
  Cookie, CSRF headers, password and token fields), cookies set and tokens answered.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import httpx2
import pytest

from tests.log_safety.registry import REGISTRY

_NOT_READ = (
    httpx.RequestNotRead,
    httpx.ResponseNotRead,
    httpx2.RequestNotRead,
    httpx2.ResponseNotRead,
)

# Fields of JSON bodies, forms and query strings whose value is a credential.
SECRET_FIELDS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "access_token",
        "refresh_token",
        "id_token",
        "csrf_token",
        "token",
        "client_secret",
        "api_key",
        "secret",
        "code_verifier",
    }
)
# Request headers whose whole value is a credential (Authorization and Cookie are parsed).
SECRET_HEADERS = frozenset({"x-csrf-token", "x-api-key"})
# The app's secrets take 32 random bytes or more (sessions, CSRF, refresh and one-time
# tokens, OAuth state and verifier); 16-byte tokens are public handles (a refresh token
# family's id, an access token's `jti`), which logs may name.
SECRET_TOKEN_BYTES = 32


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    _secret_types(monkeypatch)
    _password_hashers(monkeypatch)
    _token_generators(monkeypatch)
    _http_clients(monkeypatch)


def _secret_types(monkeypatch: pytest.MonkeyPatch) -> None:
    import pydantic

    for cls in (pydantic.SecretStr, pydantic.SecretBytes):
        original = cls.__init__

        def init(self: Any, secret_value: Any, _original: Any = original) -> None:
            REGISTRY.add(secret_value, "a SecretStr (a secret setting)")
            _original(self, secret_value)

        monkeypatch.setattr(cls, "__init__", init)


def _password_hashers(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.memory.security import InMemoryPasswordHasher
    from adapters.security.argon2 import Argon2PasswordHasher

    for cls in (Argon2PasswordHasher, InMemoryPasswordHasher):
        hash_, verify = cls.hash, cls.verify

        @functools.wraps(hash_)
        async def hashed(self: Any, password: str, _hash: Any = hash_) -> str:
            REGISTRY.add(password, "a password")
            return str(await _hash(self, password))

        @functools.wraps(verify)
        async def verified(
            self: Any, password_hash: str, password: str, _verify: Any = verify
        ) -> bool:
            REGISTRY.add(password, "a password")
            return bool(await _verify(self, password_hash, password))

        monkeypatch.setattr(cls, "hash", hashed)
        monkeypatch.setattr(cls, "verify", verified)


def _token_generators(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.memory.tokens import SequentialTokenGenerator
    from adapters.system.tokens import SecretsTokenGenerator

    for cls in (SecretsTokenGenerator, SequentialTokenGenerator):
        original = cls.token

        @functools.wraps(original)
        def token(self: Any, nbytes: int = 32, _original: Any = original) -> str:
            value = str(_original(self, nbytes))
            if nbytes >= SECRET_TOKEN_BYTES:
                REGISTRY.add(value, "a token from the TokenGenerator")
            return value

        monkeypatch.setattr(cls, "token", token)


def _http_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (httpx, httpx2):
        sync_send, async_send = module.Client.send, module.AsyncClient.send

        @functools.wraps(sync_send)
        def send(self: Any, request: Any, *args: Any, _send: Any = sync_send, **kw: Any) -> Any:
            response = _send(self, request, *args, **kw)
            record_exchange(response)
            return response

        @functools.wraps(async_send)
        async def asend(
            self: Any, request: Any, *args: Any, _send: Any = async_send, **kw: Any
        ) -> Any:
            response = await _send(self, request, *args, **kw)
            record_exchange(response)
            return response

        monkeypatch.setattr(module.Client, "send", send)
        monkeypatch.setattr(module.AsyncClient, "send", asend)


# --- what crosses HTTP ------------------------------------------------------------------


def record_exchange(response: Any) -> None:
    """Register the credentials of an httpx (or httpx2) response, its request and the
    redirects before it."""
    for answer in (*response.history, response):
        _record_request(answer.request)
        _record_response(answer)


def _record_request(request: Any) -> None:
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered in ("authorization", "proxy-authorization"):
            _record_authorization(value)
        elif lowered == "cookie":
            for pair in value.split(";"):
                REGISTRY.add(pair.partition("=")[2].strip(), "a cookie sent")
        elif lowered in SECRET_HEADERS:
            REGISTRY.add(value, f"a {name} header")
    _record_fields(parse_qsl(str(request.url.query, "ascii", "replace")), "a query parameter")
    try:
        body = request.content
    except _NOT_READ:  # a streamed request body: not read here
        return
    _record_body(request.headers.get("content-type", ""), body, "a request field")


def _record_authorization(value: str) -> None:
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            decoded = credentials
        REGISTRY.add(decoded.partition(":")[2], "a Basic password")
    REGISTRY.add(credentials.strip() or value, "an Authorization header")


def _record_response(response: Any) -> None:
    for cookie in response.headers.get_list("set-cookie"):
        REGISTRY.add(cookie.split(";", 1)[0].partition("=")[2].strip('"'), "a cookie set")
    location = response.headers.get("location")
    if location:
        _record_fields(parse_qsl(urlsplit(location).query), "a redirect's query parameter")
    try:
        body = response.content
    except _NOT_READ:  # a streamed answer the test reads itself
        return
    _record_body(response.headers.get("content-type", ""), body, "an answer's field")


def _record_body(content_type: str, body: bytes, source: str) -> None:
    if not body:
        return
    if "json" in content_type:
        try:
            _record_json(json.loads(body), source)
        except (ValueError, RecursionError):  # not JSON, or absurdly deep (tests send it)
            return
    elif "x-www-form-urlencoded" in content_type:
        _record_fields(parse_qsl(body.decode("utf-8", "replace")), source)


def _record_json(document: Any, source: str) -> None:
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key in SECRET_FIELDS and isinstance(item, str):
                    REGISTRY.add(item, f"{source} {key!r}")
                else:
                    pending.append(item)
        elif isinstance(value, list):
            pending.extend(value)


def _record_fields(pairs: Iterable[tuple[str, str]], source: str) -> None:
    for key, value in pairs:
        if key in SECRET_FIELDS:
            REGISTRY.add(value, f"{source} {key!r}")

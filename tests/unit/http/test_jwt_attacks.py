"""The JWT attack matrix over HTTP, on every profile: forged, altered, expired and
misused access tokens are 401 and change nothing; the same crafting without the defect is
accepted (the controls), so each 401 is due to its defect."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from adapters.security.jwt import PyJwtAccessTokenCodec, derive_signing_key
from core.identity.model import AccessTokenClaims
from core.shared.clock import Clock
from tests.unit.http.bearer_support import (
    ME,
    MobileApp,
    Signed,
    assert_invalid_token,
    new_app,
    sign_in_twice,
)
from tests.unit.http.profiles import TEST_SECRET
from tests.unit.http.support import Browser, new_credentials

KEY = derive_signing_key(TEST_SECRET)


@pytest.fixture
def signed(client: TestClient) -> Signed:
    return sign_in_twice(client)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _reissue(
    genuine: str,
    *,
    key: bytes = KEY,
    alg: str = "HS256",
    header_typ: str = "at+jwt",
    **changes: Any,
) -> str:
    """The genuine token's claims with `changes` (None drops a claim), signed anew."""
    body = {**_claims_of(genuine), **changes}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=alg, headers={"typ": header_typ})


def _raw(header: dict[str, Any], body: dict[str, Any], signature: str | None = None) -> str:
    """A token encoded by hand; `signature=None` signs it with the app's key (HMAC-SHA256)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    if signature is None:
        signature = _b64(hmac.new(KEY, signing_input.encode(), hashlib.sha256).digest())
    return f"{signing_input}.{signature}"


def _codec(**changes: Any) -> PyJwtAccessTokenCodec:
    options: dict[str, Any] = {"issuer": "portico", "audience": "portico-api"}
    options.update(changes)
    return PyJwtAccessTokenCodec(options.pop("secret", TEST_SECRET), **options)


def _claims(genuine: str, **changes: Any) -> AccessTokenClaims:
    body = _claims_of(genuine)
    values: dict[str, Any] = {
        "subject": int(body["sub"]),
        "token_id": body["jti"],
        "family_id": body["fid"],
        "issued_at": datetime.fromtimestamp(body["iat"], UTC),
        "expires_at": datetime.fromtimestamp(body["exp"], UTC),
    }
    values.update(changes)
    return AccessTokenClaims(**values)


def _under_header(genuine: str, header: dict[str, Any]) -> str:
    """The genuine payload segment under another header, HMAC-SHA256-signed with our key."""
    head = _b64(json.dumps(header).encode())
    body = genuine.split(".")[1]
    mac = hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _tampered(genuine: str, subject: int) -> str:
    head, _, signature = genuine.split(".")
    body = {**_claims_of(genuine), "sub": str(subject)}
    return f"{head}.{_b64(json.dumps(body, separators=(',', ':')).encode())}.{signature}"


@dataclass(frozen=True)
class Stolen:
    """What an attacker starts from: the caller's own credentials, a victim's id, and the
    server's time (its clock, and the leeway its token codec allows)."""

    access: str
    refresh: str
    session: str | None
    own_id: int
    victim_id: int
    now: datetime
    leeway: timedelta


HOUR = timedelta(hours=1)
Craft = Callable[[Stolen], str]
ATTACKS: dict[str, Craft] = {
    "alg none": lambda t: _raw({"alg": "none", "typ": "at+jwt"}, _claims_of(t.access), ""),
    "alg none, signature kept": lambda t: _raw(
        {"alg": "none"}, _claims_of(t.access), t.access.split(".")[2]
    ),
    "HS256 with a wrong key": lambda t: _reissue(
        t.access, key=derive_signing_key("another-secret-0123456789")
    ),
    "HS256 with the raw secret": lambda t: _reissue(t.access, key=TEST_SECRET.encode()),
    "HS512 with the right key": lambda t: _reissue(t.access, alg="HS512"),
    # RS256 in the header, "signed" with our HMAC key as if it were the public key.
    "RS256 alg confusion": lambda t: _under_header(t.access, {"alg": "RS256", "typ": "at+jwt"}),
    "expired": lambda t: _codec().issue(
        _claims(t.access, issued_at=t.now - 2 * HOUR, expires_at=t.now - HOUR)
    ),
    "issued in the future": lambda t: _codec().issue(
        _claims(t.access, issued_at=t.now + HOUR, expires_at=t.now + 2 * HOUR)
    ),
    "wrong audience": lambda t: _codec(audience="another-api").issue(_claims(t.access)),
    "wrong issuer": lambda t: _codec(issuer="someone-else").issue(_claims(t.access)),
    "typ refresh": lambda t: _reissue(t.access, typ="refresh"),
    "typ missing": lambda t: _reissue(t.access, typ=None),
    "header typ JWT": lambda t: _reissue(t.access, header_typ="JWT"),
    "tampered payload, original signature": lambda t: _tampered(t.access, t.victim_id),
    "forged subject, right key, no family": lambda t: _reissue(
        t.access, sub=str(t.victim_id), fid=None
    ),
    "refresh token used as access token": lambda t: t.refresh,
    "session id used as access token": lambda t: t.session or "missing",
    "garbage": lambda t: "garbage",
    "three dots": lambda t: "a.b.c",
    "truncated": lambda t: t.access[:-5],
    "oversized": lambda t: t.access + "A" * 5000,
    "not a b64token": lambda t: "abc def",
    "empty": lambda t: "",
}
# The same crafting without the defect: each must be accepted, so every 401 above is due
# to its defect, not to how the test builds tokens. Every helper the attacks use is here.
CONTROLS: dict[str, Craft] = {
    "the genuine token": lambda t: t.access,
    "re-signed with our key (_reissue)": lambda t: _reissue(t.access),
    "re-issued by the test's codec (_codec)": lambda t: _codec().issue(_claims(t.access)),
    "encoded by hand, HS256 (_raw)": lambda t: _raw(
        {"alg": "HS256", "typ": "at+jwt"}, _claims_of(t.access)
    ),
    "HS256 header (_under_header)": lambda t: _under_header(
        t.access, {"alg": "HS256", "typ": "at+jwt"}
    ),
    "own subject, original signature (_tampered)": lambda t: _tampered(t.access, t.own_id),
}


def _stolen(signed: Signed, client: TestClient, victim_id: int) -> Stolen:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    settings = client.app.state.settings  # type: ignore[attr-defined]
    return Stolen(
        access=signed.app.access or "",
        refresh=signed.app.refresh_token or "",
        session=signed.browser.session_cookie,
        own_id=signed.app.me().json()["id"],
        victim_id=victim_id,
        now=runtime.get(Clock).now(),
        leeway=timedelta(seconds=settings.tokens.leeway_seconds),
    )


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_jwt_attack_matrix_is_401(attack: str, signed: Signed, client: TestClient) -> None:
    victim = new_credentials()
    assert Browser(client).register(victim).status_code == 201
    victim_app = new_app(client, victim)
    victim_id = victim_app.me().json()["id"]
    forged = ATTACKS[attack](_stolen(signed, client, victim_id))
    app = MobileApp(client)
    if forged == "":
        response = app.request("GET", ME, headers={"Authorization": "Bearer "})
    else:
        response = app.request("GET", ME, bearer=forged)
    assert_invalid_token(response)
    # Nothing changes with a forged token either.
    renamed = app.request("PATCH", ME, bearer=forged or "x y", json={"username": "forged_name"})
    assert renamed.status_code == 401
    assert victim_app.me().json()["username"] == victim.username
    assert signed.app.me().json()["username"] == signed.credentials.username


@pytest.mark.parametrize("control", list(CONTROLS), ids=list(CONTROLS))
def test_jwt_attack_matrix_controls_are_200(
    control: str, signed: Signed, client: TestClient
) -> None:
    token = CONTROLS[control](_stolen(signed, client, victim_id=0))
    assert token.count(".") == 2
    me = MobileApp(client).me(bearer=token)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == signed.credentials.email


def test_the_expired_and_future_cases_are_out_of_the_servers_window(
    signed: Signed, client: TestClient
) -> None:
    """Measured against the server's clock and leeway, not the test's assumptions."""
    stolen = _stolen(signed, client, victim_id=0)
    server_now = client.app.state.runtime.get(Clock).now().timestamp()  # type: ignore[attr-defined]
    leeway = stolen.leeway.total_seconds()
    expired = _claims_of(ATTACKS["expired"](stolen))
    assert expired["exp"] < server_now - leeway - 60
    assert expired["iat"] < expired["exp"]  # expired, not malformed (exp before iat)
    future = _claims_of(ATTACKS["issued in the future"](stolen))
    assert future["iat"] > server_now + leeway + 60
    assert future["iat"] < future["exp"]

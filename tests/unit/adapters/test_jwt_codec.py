"""The PyJWT access-token codec against forged and malformed tokens (RFC 8725 attacks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from adapters.security.jwt import (
    HEADER_TYPE,
    REQUIRED_CLAIMS,
    SUPPORTED_ALGORITHMS,
    PyJwtAccessTokenCodec,
    derive_signing_key,
)
from core.identity.errors import InvalidAccessTokenError
from core.identity.model import AccessTokenClaims

SECRET = "unit-secret-key-long-enough-for-anything-0123456789"
KEY = derive_signing_key(SECRET)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ISSUER, AUDIENCE = "portico", "portico-api"


def codec(**changes: Any) -> PyJwtAccessTokenCodec:
    options: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "leeway_seconds": 0}
    options.update(changes)
    return PyJwtAccessTokenCodec(options.pop("secret", SECRET), **options)


def claims() -> AccessTokenClaims:
    return AccessTokenClaims(
        subject=7,
        token_id="jti-0123456789abcdef",
        family_id="fam-0123456789abcdef",
        issued_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
    )


def payload(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "7",
        "iat": NOW.timestamp(),
        "exp": (NOW + timedelta(minutes=15)).timestamp(),
        "jti": "jti-0123456789abcdef",
        "fid": "fam-0123456789abcdef",
        "typ": "access",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def signed(
    body: dict[str, Any], *, key: bytes = KEY, alg: str = "HS256", typ: Any = HEADER_TYPE
) -> str:
    """`body` under the header `{alg, typ}` (no `typ` when None), HMAC-signed by hand.
    Every crafted token goes this way, so `test_crafting_without_a_defect_is_accepted`
    shows each refusal is due to what the test changed, not to the crafting."""
    header = {"alg": alg} if typ is None else {"alg": alg, "typ": typ}
    return _resign(unsigned(header, body), key, alg)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _resign(token: str, key: bytes, alg: str = "HS256") -> str:
    head, body, _ = token.split(".")
    mac = hmac.new(key, f"{head}.{body}".encode("ascii"), _HASHES[alg]).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _compact(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _swapped(token: str, *, header: dict[str, Any] | None = None, body: Any = None) -> str:
    """`token` with its header or payload segment re-encoded (compact JSON, as PyJWT
    writes them), its signature kept."""
    head, payload_segment, signature = token.split(".")
    head = _compact(header) if header is not None else head
    payload_segment = _compact(body) if body is not None else payload_segment
    return f"{head}.{payload_segment}.{signature}"


def unsigned(header: dict[str, Any], body: dict[str, Any], signature: str = "") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}.{signature}"


def assert_refused(token: str, *, now: datetime = NOW) -> None:
    with pytest.raises(InvalidAccessTokenError):
        codec().decode(token, now)


def test_a_genuine_token_decodes() -> None:
    token = codec().issue(claims())
    assert codec().decode(token, NOW) == claims()
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": HEADER_TYPE}
    body = jwt.decode(token, options={"verify_signature": False})
    assert set(body) == set(REQUIRED_CLAIMS)
    assert body["typ"] == "access" and body["sub"] == "7"


@pytest.mark.parametrize("alg", SUPPORTED_ALGORITHMS)
def test_crafting_without_a_defect_is_accepted(alg: str) -> None:
    """Control for every refusal below: the test's hand-made tokens (`signed`, `unsigned`
    plus `_resign`, `_swapped`) are accepted when nothing is wrong with them."""
    pinned = codec(algorithm=alg)
    assert pinned.decode(signed(payload(), alg=alg), NOW) == claims()
    genuine = pinned.issue(claims())
    # Re-encoding the genuine header and payload as PyJWT does keeps them byte for byte.
    untouched = _swapped(genuine, header={"alg": alg, "typ": HEADER_TYPE}, body=payload())
    assert untouched == genuine
    assert pinned.decode(untouched, NOW) == claims()


def test_alg_none_is_refused() -> None:
    for alg in ("none", "None", "NONE", ""):
        assert_refused(unsigned({"alg": alg, "typ": HEADER_TYPE}, payload()))
        assert_refused(unsigned({"alg": alg, "typ": HEADER_TYPE}, payload(), "c2ln"))
    assert_refused(unsigned({"typ": HEADER_TYPE}, payload()))  # no alg at all


def test_a_token_signed_with_another_key_is_refused() -> None:
    assert_refused(signed(payload(), key=derive_signing_key("another-secret-0123456789abcdef")))
    assert_refused(signed(payload(), key=SECRET.encode()))  # the raw secret is not the key


@pytest.mark.parametrize("alg", ["HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA"])
def test_any_algorithm_but_the_pinned_one_is_refused(alg: str) -> None:
    if alg.startswith("HS"):
        token = signed(payload(), alg=alg)  # right key, wrong algorithm
    else:
        # Algorithm confusion: an asymmetric header over an HMAC made with our own key
        # (what a verifier that trusted the header would check against).
        forged = unsigned({"alg": alg, "typ": HEADER_TYPE}, payload())
        token = _resign(forged, KEY)
    assert_refused(token)


def test_a_codec_pinned_to_another_algorithm_refuses_hs256() -> None:
    token = codec().issue(claims())
    with pytest.raises(InvalidAccessTokenError):
        codec(algorithm="HS512").decode(token, NOW)
    other = codec(algorithm="HS512")
    assert other.decode(other.issue(claims()), NOW) == claims()


def test_an_expired_token_is_refused() -> None:
    # Issued well before it expires (so it is expired, not malformed: exp <= iat is
    # refused on its own, see the claims matrix), and expired a second before NOW.
    issued = (NOW - timedelta(minutes=15)).timestamp()
    expired = signed(payload(iat=issued, exp=(NOW - timedelta(seconds=1)).timestamp()))
    assert_refused(expired)
    # Control: the same token a little earlier, while it was current, is accepted.
    assert codec().decode(expired, NOW - timedelta(seconds=2)).subject == 7
    genuine = codec().issue(claims())
    assert_refused(genuine, now=NOW + timedelta(minutes=15))
    assert codec().decode(genuine, NOW + timedelta(minutes=15, microseconds=-1)) == claims()


def test_the_leeway_bounds_how_long_an_expired_token_is_accepted() -> None:
    lenient = codec(leeway_seconds=10)
    issued = (NOW - timedelta(minutes=15)).timestamp()
    just_expired = signed(payload(iat=issued, exp=(NOW - timedelta(seconds=9)).timestamp()))
    long_expired = signed(payload(iat=issued, exp=(NOW - timedelta(seconds=11)).timestamp()))
    assert lenient.decode(just_expired, NOW).subject == 7
    with pytest.raises(InvalidAccessTokenError):
        lenient.decode(long_expired, NOW)


def test_a_token_issued_in_the_future_is_refused() -> None:
    assert_refused(signed(payload(iat=(NOW + timedelta(minutes=1)).timestamp())))


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "another-api"},
        {"aud": [AUDIENCE, "another-api"]},
        {"aud": [AUDIENCE]},
        {"iss": "someone-else"},
        {"typ": "refresh"},
        {"typ": "Access"},
        {"sub": "not-a-number"},
        {"sub": 7},
        {"sub": "0"},
        {"sub": "007"},
        {"sub": "-7"},
        {"jti": 5},
        {"jti": ""},
        {"fid": ["x"]},
        {"iat": "yesterday"},
        {"iat": True},
        {"exp": "later"},
        {"exp": float("inf")},
        {"exp": 10**30},
        {"exp": NOW.timestamp()},  # expires when issued
    ],
    ids=repr,
)
def test_wrong_or_malformed_claims_are_refused(changes: dict[str, Any]) -> None:
    assert_refused(signed(payload(**changes)))


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_every_required_claim_is_required(claim: str) -> None:
    body = payload()
    del body[claim]
    assert_refused(signed(body))


@pytest.mark.parametrize("typ", [None, "JWT", "at+JWT", "refresh+jwt"])
def test_the_header_type_must_be_at_jwt(typ: str | None) -> None:
    assert_refused(signed(payload(), typ=typ))


def test_a_tampered_payload_with_the_original_signature_is_refused() -> None:
    token = codec().issue(claims())
    assert _swapped(token, body=payload()) == token  # control: unchanged claims, same token
    for tampered in (payload(sub="8"), payload(exp=(NOW + timedelta(days=365)).timestamp())):
        assert_refused(_swapped(token, body=tampered))
    # The same payload re-encoded differently (whitespace) breaks the signature too.
    head, body_segment, signature = token.split(".")
    body = json.loads(_unb64(body_segment))
    assert_refused(f"{head}.{_b64(json.dumps(body, indent=1).encode())}.{signature}")


def test_a_tampered_header_is_refused() -> None:
    token = codec().issue(claims())
    assert _swapped(token, header={"alg": "HS256", "typ": HEADER_TYPE}) == token  # control
    for header in (
        {"alg": "HS256", "typ": "JWT"},
        {"alg": "HS256", "typ": HEADER_TYPE, "kid": "x"},
    ):
        assert_refused(_swapped(token, header=header))


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "Bearer",
        "eyJ",
        "a.b",
        "a.b.c",
        "..",
        "a" * 5000,
        unsigned({"alg": "HS256"}, {"nested": [[[[[[[[]]]]]]]]}),
        f"{_b64(b'not json')}.{_b64(b'not json')}.c2ln",
        f"{_b64(b'[]')}.{_b64(b'{}')}.c2ln",
        f"{_b64(json.dumps({'alg': 'HS256', 'typ': HEADER_TYPE}).encode())}.{_b64(b'[1]')}.c2ln",
        f"{_b64(json.dumps({'alg': ['HS256']}).encode())}.{_b64(b'{}')}.c2ln",
        f"{_b64(b'[' * 100000 + b']' * 100000)}.{_b64(b'{}')}.c2ln",
    ],
    ids=lambda value: repr(value[:30]),
)
def test_garbage_is_refused_without_other_errors(garbage: str) -> None:
    assert_refused(garbage)


def test_settings_are_checked() -> None:
    for bad in (
        {"algorithm": "none"},
        {"algorithm": "RS256"},
        {"secret": ""},
        {"issuer": ""},
        {"audience": ""},
        {"leeway_seconds": -1},
    ):
        with pytest.raises(ValueError):
            codec(**bad)
    assert SECRET not in repr(codec()) and repr(KEY) not in repr(codec())

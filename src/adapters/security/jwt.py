"""Access tokens as signed JWTs (PyJWT), with one pinned HMAC algorithm."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from core.identity.errors import InvalidAccessTokenError
from core.identity.model import AccessTokenClaims
from core.identity.ports import AccessTokenCodec

# Symmetric only: the key is derived from the application secret. (An RS*/ES* codec
# would take a key pair instead; never mix the two families under one key.)
SUPPORTED_ALGORITHMS = ("HS256", "HS384", "HS512")
ACCESS_TOKEN_TYPE = "access"  # the `typ` claim
HEADER_TYPE = "at+jwt"  # the JOSE `typ` header of access tokens (RFC 9068)
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "typ", "jti", "fid")
# Ours are ~450 characters; anything far longer is refused before it is parsed.
MAX_TOKEN_LENGTH = 4096
MAX_ID_LENGTH = 128
_KEY_LABEL = b"portico/jwt/access-token/v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MAX_SUBJECT = 2**63 - 1


def derive_signing_key(secret: str | bytes) -> bytes:
    """The HMAC key access tokens are signed with: HMAC-SHA512 of a fixed label under the
    application secret, so the secret itself signs nothing and the key fits every
    supported algorithm (64 bytes)."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(raw, _KEY_LABEL, hashlib.sha512).digest()


def _numeric_date(moment: datetime) -> float:
    """Seconds since the epoch with microseconds (RFC 7519 NumericDate may be fractional),
    so a token issued right after a logout-all is told apart from one issued before."""
    if moment.tzinfo is None:
        raise ValueError("token times must be timezone-aware")
    return ((moment - _EPOCH) // _MICROSECOND) / 1_000_000


def _moment(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a NumericDate")
    if not math.isfinite(value) or not 0 <= value < 253_402_300_800:  # year 10000
        raise ValueError("NumericDate out of range")
    return _EPOCH + timedelta(microseconds=round(value * 1_000_000))


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        raise ValueError("not an identifier")
    return value


def _subject(value: Any) -> int:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise ValueError("the subject is not a user id")
    subject = int(value)
    if not 0 < subject <= _MAX_SUBJECT or str(subject) != value:
        raise ValueError("the subject is not a user id")
    return subject


def _claims(payload: Mapping[str, Any]) -> AccessTokenClaims:
    claims = AccessTokenClaims(
        subject=_subject(payload["sub"]),
        token_id=_identifier(payload["jti"]),
        family_id=_identifier(payload["fid"]),
        issued_at=_moment(payload["iat"]),
        expires_at=_moment(payload["exp"]),
    )
    if claims.expires_at <= claims.issued_at:
        raise ValueError("the token expires before it is issued")
    return claims


class PyJwtAccessTokenCodec(AccessTokenCodec):
    """`AccessTokenCodec` issuing compact JWS tokens (contract: the port).

    - The signing key is derived from `secret` (`derive_signing_key`), so it is used for
      nothing else.
    - `algorithm` is pinned: decoding accepts exactly that one, so `none`, another HMAC
      size or an asymmetric algorithm in the header is refused before any key is used.
    - Header `typ` is `at+jwt`; the payload carries `iss`, `aud` (a single string),
      `sub` (the user id as text), `iat` and `exp` (NumericDates with microseconds),
      `jti`, `fid` (the refresh family) and `typ` = `access`. All are required on
      decoding and `iss`, `aud` and both `typ`s must match exactly.
    - Time is checked against the `now` the caller gives (not the wall clock), with
      `leeway_seconds` either side for clock skew between processes.
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        issuer: str,
        audience: str,
        algorithm: str = "HS256",
        leeway_seconds: float = 0,
    ) -> None:
        if algorithm not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(SUPPORTED_ALGORITHMS)}")
        if not secret:
            raise ValueError("the signing secret must not be empty")
        if not issuer or not audience:
            raise ValueError("issuer and audience must not be empty")
        if leeway_seconds < 0:
            raise ValueError("leeway must not be negative")
        self._key = derive_signing_key(secret)
        self._issuer = issuer
        self._audience = audience
        self._algorithm = algorithm
        self._leeway = leeway_seconds

    def __repr__(self) -> str:  # never print the key
        return (
            f"PyJwtAccessTokenCodec(algorithm={self._algorithm!r}, issuer={self._issuer!r}, "
            f"audience={self._audience!r})"
        )

    def issue(self, claims: AccessTokenClaims) -> str:
        payload = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(claims.subject),
            "iat": _numeric_date(claims.issued_at),
            "exp": _numeric_date(claims.expires_at),
            "jti": claims.token_id,
            "fid": claims.family_id,
            "typ": ACCESS_TOKEN_TYPE,
        }
        return jwt.encode(
            payload, self._key, algorithm=self._algorithm, headers={"typ": HEADER_TYPE}
        )

    def decode(self, token: str, now: datetime) -> AccessTokenClaims:
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
            raise InvalidAccessTokenError()
        try:
            decoded = jwt.decode_complete(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "strict_aud": True,
                    # Checked below against the caller's clock, not the wall clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
            header, payload = decoded["header"], decoded["payload"]
            if header.get("typ") != HEADER_TYPE or payload.get("typ") != ACCESS_TOKEN_TYPE:
                raise ValueError("not an access token")
            claims = _claims(payload)
        # Anything the token makes the parser trip over is the token's fault: one answer.
        except (
            jwt.PyJWTError,
            ValueError,
            TypeError,
            LookupError,
            ArithmeticError,
            RecursionError,
        ):
            raise InvalidAccessTokenError() from None
        if not claims.is_current(now, self._leeway):
            raise InvalidAccessTokenError()
        return claims

"""The `AccessTokenCodec` contract on every adapter: PyJWT and in memory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory.access_tokens import InMemoryAccessTokenCodec
from adapters.security.jwt import PyJwtAccessTokenCodec
from core.identity.errors import InvalidAccessTokenError
from core.identity.model import AccessTokenClaims
from core.identity.ports import AccessTokenCodec
from core.shared.errors import AuthenticationError

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
SECRET = "contract-secret-key-long-enough-for-anything-0123456789"
LEEWAY = 5

MakeCodec = Callable[..., AccessTokenCodec]


def _pyjwt(
    *, secret: str = SECRET, issuer: str = "portico", audience: str = "portico-api"
) -> AccessTokenCodec:
    return PyJwtAccessTokenCodec(secret, issuer=issuer, audience=audience, leeway_seconds=LEEWAY)


def _memory(**_: str) -> AccessTokenCodec:
    # Each instance is its own "key": another instance plays another key, issuer or audience.
    return InMemoryAccessTokenCodec(leeway_seconds=LEEWAY)


@pytest.fixture(params=["pyjwt", "memory"])
def make_codec(request: pytest.FixtureRequest) -> MakeCodec:
    return _pyjwt if request.param == "pyjwt" else _memory


def claims(**changes: object) -> AccessTokenClaims:
    values: dict[str, object] = {
        "subject": 42,
        "token_id": "jti-0123456789abcdef",
        "family_id": "fam-0123456789abcdef",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(minutes=15),
    }
    values.update(changes)
    return AccessTokenClaims(**values)  # type: ignore[arg-type]


def refused(codec: AccessTokenCodec, token: str, now: datetime = NOW) -> bool:
    try:
        codec.decode(token, now)
    except InvalidAccessTokenError as exc:
        assert isinstance(exc, AuthenticationError)
        assert exc.code == "invalid_token"
        return True
    return False


def test_a_token_decodes_to_the_claims_it_was_issued_with(make_codec: MakeCodec) -> None:
    codec = make_codec()
    original = claims()
    token = codec.issue(original)
    assert isinstance(token, str) and token
    assert codec.decode(token, NOW) == original  # times to the microsecond
    assert codec.decode(token, NOW).issued_at.utcoffset() == timedelta(0)


def test_two_tokens_for_the_same_user_differ(make_codec: MakeCodec) -> None:
    codec = make_codec()
    first = codec.issue(claims(token_id="jti-aaaaaaaaaaaaaaaa"))
    second = codec.issue(claims(token_id="jti-bbbbbbbbbbbbbbbb"))
    assert first != second


def test_a_token_is_current_from_issue_to_expiry_with_the_leeway(make_codec: MakeCodec) -> None:
    codec = make_codec()
    token = codec.issue(claims())
    expires = NOW + timedelta(minutes=15)
    assert not refused(codec, token, expires - timedelta(seconds=1))
    assert not refused(codec, token, expires + timedelta(seconds=LEEWAY - 1))
    assert refused(codec, token, expires + timedelta(seconds=LEEWAY))
    assert refused(codec, token, expires + timedelta(days=1))
    # Not valid before it was issued (beyond the leeway): a token from the future.
    assert not refused(codec, token, NOW - timedelta(seconds=LEEWAY))
    assert refused(codec, token, NOW - timedelta(seconds=LEEWAY + 1))


def test_garbage_is_refused(make_codec: MakeCodec) -> None:
    codec = make_codec()
    for garbage in ("", "x", "not.a.token", "a.b.c.d", "....", "é" * 10, "A" * 5000, "\x00"):
        assert refused(codec, garbage), garbage


def test_an_altered_token_is_refused(make_codec: MakeCodec) -> None:
    codec = make_codec()
    token = codec.issue(claims())
    for position in (0, len(token) // 2, len(token) - 2):
        flipped = "A" if token[position] != "A" else "B"
        assert refused(codec, token[:position] + flipped + token[position + 1 :])
    assert refused(codec, token + "A")
    assert refused(codec, token[:-1])


@pytest.mark.parametrize(
    "other",
    [
        {"secret": "another-secret-key-long-enough-for-anything-0123456789"},
        {"issuer": "someone-else"},
        {"audience": "another-api"},
    ],
    ids=["key", "issuer", "audience"],
)
def test_a_token_of_another_codec_is_refused(make_codec: MakeCodec, other: dict[str, str]) -> None:
    ours, theirs = make_codec(), make_codec(**other)
    token = theirs.issue(claims())
    assert not refused(theirs, token)
    assert refused(ours, token)

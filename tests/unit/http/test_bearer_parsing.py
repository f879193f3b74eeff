"""`Authorization: Bearer` parsing and the 401 challenge, without an app."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from entrypoints.http.bearer import (
    CHALLENGE,
    MALFORMED,
    MAX_BEARER_LENGTH,
    bearer_applies,
    bearer_credentials,
    with_bearer_challenge,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("Basic dXNlcjpwYXNz", None),
        ("Digest realm=x", None),
        ("Bearertoken", None),
        ("Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Bearer a+b/c==", "a+b/c=="),
        ("Bearer", MALFORMED),
        ("Bearer ", MALFORMED),
        ("Bearer a b", MALFORMED),
        ("Bearer a=b", MALFORMED),
        ("Bearer é", MALFORMED),
        ("Bearer " + "a" * (MAX_BEARER_LENGTH + 1), MALFORMED),
    ],
)
def test_bearer_credentials(header: str | None, expected: object) -> None:
    assert bearer_credentials(header) == expected


def test_bearer_applies_to_api_paths_that_use_identity() -> None:
    free = frozenset({"/api/v1/auth/token"})
    assert bearer_applies({"path": "/api/v1/users/me"}, free)
    assert not bearer_applies({"path": "/api/v1/auth/token"}, free)
    assert not bearer_applies({"path": "/health"}, free)
    assert not bearer_applies({"path": "/metrics"}, free)


def _sent(status: int, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        messages.append(message)

    async def run() -> None:
        wrapped = with_bearer_challenge(send)
        await wrapped({"type": "http.response.start", "status": status, "headers": headers})
        await wrapped({"type": "http.response.body", "body": b""})

    asyncio.run(run())
    return messages


def test_a_401_gets_a_bearer_challenge_once() -> None:
    (start, body) = _sent(401, [(b"content-type", b"application/problem+json")])
    assert (b"www-authenticate", CHALLENGE.encode()) in start["headers"]
    assert body["type"] == "http.response.body"
    own = (b"www-authenticate", b'Bearer error="invalid_token"')
    (start, _) = _sent(401, [own])
    assert start["headers"] == [own]
    (start, _) = _sent(403, [])
    assert start["headers"] == []

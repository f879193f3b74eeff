"""The minimal-I/O ceiling answers Portico's user JSON and finds the session by the same
fingerprint Portico uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from starlette.responses import JSONResponse

from bench.ceilings.minimal_io import session_key, session_value, user_json
from core.shared.hashing import fingerprint
from entrypoints.http.schemas.users import UserRead


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 12, 2, 6, 7, 8, 123456, tzinfo=UTC),
        datetime(2026, 12, 2, 6, 7, 8, tzinfo=UTC),
        datetime(2026, 12, 2, 6, 7, 8, 120000, tzinfo=UTC),
        None,
    ],
)
def test_the_ceiling_renders_the_same_bytes_as_portico(created_at: datetime | None) -> None:
    row = {
        "id": 7,
        "email": "ada@example.com",
        "username": "ada_é",
        "tier_code": "free",
        "email_verified": True,
        "created_at": created_at,
    }
    portico = UserRead(
        id=7,
        email="ada@example.com",
        username="ada_é",
        tier="free",
        email_verified=True,
        created_at=created_at,
    ).model_dump_json()
    assert JSONResponse(user_json(row)).body == portico.encode("utf-8")


def test_the_session_key_is_the_prefix_and_portico_s_token_fingerprint() -> None:
    token = "k3Q9x_-session-token-value-0123456789abcdef"
    assert session_key("bench:x:ceiling:session:", token) == (
        "bench:x:ceiling:session:" + fingerprint(token)
    )


def test_the_session_value_carries_the_user_and_the_expiry() -> None:
    assert json.loads(session_value(42, 1700000000.5)) == {
        "user_id": 42,
        "expires_at": 1700000000.5,
    }

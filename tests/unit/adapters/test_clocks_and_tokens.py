"""The clock and token adapters: system ones and their deterministic test doubles."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta, timezone

import pytest

from adapters.memory.clock import ManualClock
from adapters.memory.tokens import SequentialTokenGenerator
from adapters.system import clock as system_clock
from adapters.system.clock import SystemClock
from adapters.system.tokens import SecretsTokenGenerator

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_system_clock_is_aware_utc_and_current() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_system_clock_never_goes_backwards_when_the_os_clock_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = iter(
        [
            datetime(2026, 5, 1, 12, 0, 10, tzinfo=UTC),
            datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC),  # NTP stepped the clock back
            datetime(2026, 5, 1, 12, 0, 11, tzinfo=UTC),
        ]
    )

    class SteppedDatetime(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return next(readings)

    monkeypatch.setattr(system_clock, "datetime", SteppedDatetime)
    clock = SystemClock()
    seen = [clock.now(), clock.now(), clock.now()]
    assert seen == [
        datetime(2026, 5, 1, 12, 0, 10, tzinfo=UTC),
        datetime(2026, 5, 1, 12, 0, 10, tzinfo=UTC),
        datetime(2026, 5, 1, 12, 0, 11, tzinfo=UTC),
    ]


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock()
    start = clock.now()
    assert start == datetime(2026, 1, 1, tzinfo=UTC) and clock.now() == start
    assert clock.advance(1.5) == start + timedelta(seconds=1.5)
    assert clock.now() == start + timedelta(seconds=1.5)
    clock.set(datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_manual_clock_refuses_to_go_backwards_or_naive_times() -> None:
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(datetime(2029, 12, 31, tzinfo=UTC))
    with pytest.raises(ValueError):
        clock.set(datetime(2031, 1, 1))
    with pytest.raises(ValueError):
        ManualClock(datetime(2031, 1, 1))
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("nbytes", [16, 24, 32, 33, 64])
def test_generators_match_token_urlsafe_in_length_and_alphabet(nbytes: int) -> None:
    expected_length = len(secrets.token_urlsafe(nbytes))
    for generator in (SecretsTokenGenerator(), SequentialTokenGenerator()):
        token = generator.token(nbytes)
        assert len(token) == expected_length
        assert URL_SAFE.match(token)


def test_secrets_tokens_are_unique_and_default_to_256_bits() -> None:
    generator = SecretsTokenGenerator()
    tokens = {generator.token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) == 43 for t in tokens)  # 32 bytes, unpadded base64url


def test_sequential_tokens_are_unique_and_reproducible() -> None:
    first, second = SequentialTokenGenerator(), SequentialTokenGenerator()
    run = [first.token() for _ in range(5000)]
    assert len(set(run)) == 5000
    assert [second.token() for _ in range(5000)] == run
    assert SequentialTokenGenerator(seed="other").token() != run[0]
    # No shared long prefix between consecutive tokens.
    assert run[0][:20] != run[1][:20]


def test_generators_refuse_guessable_sizes() -> None:
    for generator in (SecretsTokenGenerator(), SequentialTokenGenerator()):
        with pytest.raises(ValueError):
            generator.token(15)

"""A clock that moves only when told to."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from core.shared.clock import Clock

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class ManualClock(Clock):
    """A `Clock` for tests: time stands still until `advance` or `set` moves it.

    Contract (from `Clock`): `now()` is timezone-aware UTC and never goes backwards, so
    `advance` refuses negative steps and `set` refuses earlier times (`ValueError`).
    Starts at `start` (converted to UTC; must be aware) or at 2026-01-01T00:00:00Z, so
    runs are reproducible. Thread-safe.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _as_utc(start) if start is not None else DEFAULT_START

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by `seconds` (fractions allowed) and return the new time."""
        if seconds < 0:
            raise ValueError("a clock never goes backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, dt: datetime) -> None:
        """Jump to `dt`, which must not be earlier than the current time."""
        target = _as_utc(dt)
        with self._lock:
            if target < self._now:
                raise ValueError("a clock never goes backwards")
            self._now = target


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("ManualClock needs a timezone-aware datetime")
    return dt.astimezone(UTC)

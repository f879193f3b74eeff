"""The wall clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from core.shared.clock import Clock


class SystemClock(Clock):
    """The operating system's clock, as aware UTC datetimes.

    Contract (from `Clock`): `now()` is timezone-aware UTC and never goes backwards within
    one process, even when the system clock is stepped back (NTP correction, VM resume):
    in that case it keeps returning the latest time it has already handed out until the
    system clock catches up. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        current = datetime.now(UTC)
        with self._lock:
            if current < self._last:
                return self._last
            self._last = current
            return current

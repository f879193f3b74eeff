"""A GCRA rate limiter in process memory (`core.platform.gcra`)."""

from __future__ import annotations

import heapq
import threading
from datetime import UTC, datetime, timedelta

from core.platform.gcra import gcra_step
from core.platform.rate_limit import LocalRateLimiter, RateLimitDecision, check_hit
from core.shared.clock import Clock

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MICROS = 1_000_000


class InMemoryRateLimiter(LocalRateLimiter):
    """A `RateLimiter` for tests, the embedded default and as the in-process fallback.

    Algorithm: GCRA (`core.platform.gcra`), the same as `RedisRateLimiter`: one
    theoretical arrival time per (key, window), microseconds on the injected clock.

    Because it needs nothing outside the process it is also the fail-closed fallback for
    auth throttles when the shared limiter is unavailable (its counts are then per
    process, which is stricter per process but not shared).

    Contract otherwise as `RateLimiter`: atomic (every decision runs under a lock
    without awaiting), denied hits count nothing, `ping` never fails. Keys whose
    arrival time has passed hold nothing and are purged as time passes (a heap ordered
    by arrival time), so memory tracks only active keys.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._arrivals: dict[tuple[str, int], int] = {}
        # (arrival µs, key); a later hit on the same key pushes a later pair, and the
        # purge only deletes keys whose arrival time has really passed.
        self._expiries: list[tuple[int, tuple[str, int]]] = []

    async def hit(
        self, key: str, limit: int, window_seconds: int, cost: int = 1
    ) -> RateLimitDecision:
        check_hit(key, limit, window_seconds, cost)
        with self._lock:
            now = (self._clock.now() - _EPOCH) // _MICROSECOND
            self._purge(now)
            name = (key, window_seconds)
            step = gcra_step(
                self._arrivals.get(name, 0), now, limit, window_seconds * _MICROS, cost
            )
            if step.new_tat is not None:
                self._arrivals[name] = step.new_tat
                heapq.heappush(self._expiries, (step.new_tat, name))
            return RateLimitDecision(
                allowed=step.allowed,
                limit=limit,
                remaining=step.remaining,
                reset_after_seconds=step.reset_after_us / _MICROS,
                retry_after_seconds=step.retry_after_us / _MICROS,
            )

    async def ping(self) -> None:
        return None

    def _purge(self, now: int) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, name = heapq.heappop(self._expiries)
            arrival = self._arrivals.get(name)
            if arrival is not None and arrival <= now:
                del self._arrivals[name]

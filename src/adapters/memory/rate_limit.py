"""A sliding-window-log rate limiter in process memory."""

from __future__ import annotations

import heapq
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.platform.rate_limit import LocalRateLimiter, RateLimitDecision, check_hit
from core.shared.clock import Clock

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MICROS = 1_000_000


@dataclass(slots=True)
class _Log:
    hits: deque[tuple[int, int]] = field(default_factory=deque)  # (at µs, cost), oldest first
    used: int = 0

    def forget_before(self, cutoff: int) -> None:
        """Drop hits made at or before `cutoff`: they have left the window."""
        while self.hits and self.hits[0][0] <= cutoff:
            self.used -= self.hits.popleft()[1]


class InMemoryRateLimiter(LocalRateLimiter):
    """A `RateLimiter` for tests, the embedded default and as the in-process fallback.

    Algorithm: a sliding-window log, the same as `RedisRateLimiter`. Each allowed hit is
    recorded with its time and cost; a hit at `t` is allowed if the units recorded in
    `(t - window, t]` plus its cost stay within the limit. No span of `window_seconds`
    ever holds more than `limit` units, with microsecond precision on the injected
    clock. Memory per key is O(hits in the window), at most `limit` records.

    Because it needs nothing outside the process it is also the fail-closed fallback for
    auth throttles when the shared limiter is unavailable (its counts are then per
    process, which is stricter per process but not shared).

    Contract otherwise as `RateLimiter`: atomic (every decision runs under a lock
    without awaiting), denied hits count nothing, `ping` never fails. Logs whose hits
    have all left their window are purged as time passes (a heap ordered by when the
    newest hit leaves), so memory tracks only active keys.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, int], _Log] = {}
        # (µs when a hit leaves its window, log key); a later hit on the same log pushes
        # a later pair, and the purge only deletes logs that turned out empty.
        self._expiries: list[tuple[int, tuple[str, int]]] = []

    async def hit(
        self, key: str, limit: int, window_seconds: int, cost: int = 1
    ) -> RateLimitDecision:
        check_hit(key, limit, window_seconds, cost)
        window = window_seconds * _MICROS
        with self._lock:
            now = (self._clock.now() - _EPOCH) // _MICROSECOND
            self._purge(now)
            name = (key, window_seconds)
            log = self._logs.get(name) or _Log()
            log.forget_before(now - window)
            allowed = log.used + cost <= limit
            retry_after = 0
            if allowed:
                log.hits.append((now, cost))
                log.used += cost
                self._logs[name] = log
                heapq.heappush(self._expiries, (now + window, name))
            else:
                retry_after = _room_at(log, log.used + cost - limit) + window - now
            reset_after = log.hits[-1][0] + window - now if log.hits else 0
            return RateLimitDecision(
                allowed=allowed,
                limit=limit,
                remaining=max(0, limit - log.used),
                reset_after_seconds=reset_after / _MICROS,
                retry_after_seconds=retry_after / _MICROS,
            )

    async def ping(self) -> None:
        return None

    def _purge(self, now: int) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, name = heapq.heappop(self._expiries)
            log = self._logs.get(name)
            if log is None:
                continue
            log.forget_before(now - name[1] * _MICROS)
            if not log.hits:
                del self._logs[name]


def _room_at(log: _Log, needed: int) -> int:
    """When (µs) enough of the oldest hits have been made to free `needed` units."""
    freed = 0
    for at, cost in log.hits:
        freed += cost
        if freed >= needed:
            return at
    raise AssertionError("cost <= limit guarantees the log holds enough units")

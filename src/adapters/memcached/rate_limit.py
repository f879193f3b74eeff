"""A fixed-window rate limiter in Memcached."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymemcache.exceptions import MemcacheError  # type: ignore[import-untyped]

from adapters.memcached.client import MemcachedClient, translate_errors
from adapters.memcached.keys import check_prefix, memcached_key
from adapters.threads import ThreadOffload
from core.platform.rate_limit import DEPENDENCY, RateLimitDecision, RateLimiter, check_hit
from core.shared.clock import Clock

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MICROS = 1_000_000
_ADD_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class _Window:
    key: str  # the Memcached counter of this window
    now: int  # µs since the epoch
    end: int  # µs since the epoch when the window closes

    @property
    def expire(self) -> int:
        # Memcached counts TTLs in whole seconds and may expire up to one second early,
        # so the counter is kept a second past the end of its window.
        return math.ceil((self.end - self.now) / _MICROS) + 1


class MemcachedRateLimiter(RateLimiter):
    """A `RateLimiter` in Memcached, shared by every process.

    Algorithm: fixed windows aligned to the Unix epoch on the application's clock
    (window n covers `[n * window, (n + 1) * window)`), one counter per key and window.
    A hit increments the counter by `cost` with Memcached's atomic `incr` (creating it
    with `add`, which only one concurrent caller wins); the hit is allowed if the new
    count is within the limit. A denied hit gives its cost back with `decr`.

    Precision:
    - Exact within a window: concurrent hits receive distinct counts from the server,
      so exactly `limit` cost-1 hits pass however many race.
    - Up to twice the limit can pass in a span of `window_seconds` that straddles a
      boundary (the end of one window, then the start of the next).
    - Boundaries come from each process's clock; processes whose clocks differ by `d`
      disagree about which window a hit belongs to for `d` around each boundary.
    - Between a denied hit's `incr` and its `decr`, a concurrent hit may be denied
      although room would remain (never the other way round); a `decr` that fails
      leaves the window counted that much fuller (stricter, never looser).
    - An evicted counter (memory pressure) resets its window.
    `reset_after_seconds` and `retry_after_seconds` are the time to the window's end.

    Keys: `key_prefix` + `w<window_seconds>:<window number>:` + key, escaped by
    `memcached_key`; counters expire a second after their window ends. Every pymemcache
    call runs in a thread of `offload`. Failures and timeouts raise
    `UnavailableError(dependency="rate_limit")` within the client's timeouts. `clock`
    defaults to the system's wall clock.
    """

    def __init__(
        self,
        client: MemcachedClient,
        *,
        key_prefix: str = "portico:ratelimit:",
        offload: ThreadOffload,
        clock: Clock | None = None,
    ) -> None:
        if offload.max_concurrency > client.max_pool_size:
            raise ValueError("offload may run more calls than the client has connections")
        self._client = client
        self._prefix = check_prefix(key_prefix)
        self._offload = offload
        self._clock = clock

    async def hit(
        self, key: str, limit: int, window_seconds: int, cost: int = 1
    ) -> RateLimitDecision:
        check_hit(key, limit, window_seconds, cost)
        window = self._window(key, window_seconds)
        async with translate_errors(DEPENDENCY):
            count = await self._offload.run(self._count, window, cost)
        allowed = count <= limit
        if not allowed:
            # Best effort, after the decision is made: see the class docstring.
            await self._give_back(window, cost)
        remaining = limit - count if allowed else limit - (count - cost)
        until_end = (window.end - window.now) / _MICROS
        return RateLimitDecision(
            allowed=allowed,
            limit=limit,
            remaining=max(0, remaining),
            reset_after_seconds=until_end,
            retry_after_seconds=0.0 if allowed else until_end,
        )

    async def ping(self) -> None:
        async with translate_errors(DEPENDENCY):
            await self._offload.run(self._client.ping)

    def _window(self, key: str, window_seconds: int) -> _Window:
        moment = self._clock.now() if self._clock is not None else datetime.now(UTC)
        now = (moment - _EPOCH) // _MICROSECOND
        length = window_seconds * _MICROS
        number = now // length
        kind = f"w{window_seconds}:{number}:"
        return _Window(memcached_key(self._prefix, kind, key), now, (number + 1) * length)

    async def _give_back(self, window: _Window, cost: int) -> None:
        try:
            await self._offload.run(self._client.decr, window.key, cost)
        except (MemcacheError, OSError):
            logger.warning("could not give back a denied hit; the window stays fuller")

    # Blocking; runs in the offload's threads.
    def _count(self, window: _Window, cost: int) -> int:
        for _ in range(_ADD_ATTEMPTS):
            count = self._client.incr(window.key, cost)
            if count is not None:
                return count
            if self._client.add(window.key, str(cost).encode("ascii"), window.expire):
                return cost
        raise TimeoutError("the window's counter kept vanishing between incr and add")

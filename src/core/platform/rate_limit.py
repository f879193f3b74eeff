"""The rate-limiter port: how many hits a key may make per window, decided atomically."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Protocol

DEPENDENCY = "rate_limit"

MAX_KEY_BYTES = 512
MAX_LIMIT = 10_000
MAX_WINDOW_SECONDS = 30 * 24 * 3600  # Memcached's longest relative TTL


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """The answer to one hit, with everything a `RateLimit-*`/`Retry-After` reply needs.

    - `allowed`: whether the hit may proceed (it was counted only if so).
    - `limit`: the limit the hit was judged against.
    - `remaining`: units still available right after this decision (0 to `limit`).
    - `reset_after_seconds`: seconds until the whole limit is available again if no
      other hit comes; 0 when nothing is counted.
    - `retry_after_seconds`: 0 when allowed; when denied, seconds until a hit of the
      same cost would be allowed if no other hit comes (more than 0, at most the window).
    Seconds are floats; HTTP rounds them up to whole seconds.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after_seconds: float
    retry_after_seconds: float


class RateLimiter(Protocol):
    """Counts hits per key and says whether each one is within `limit` per window.

    Contract:
    - `hit(key, limit, window_seconds, cost)` counts `cost` units against `key` if that
      keeps the key within `limit` units per window, and reports the decision. A denied
      hit counts nothing.
    - Atomic under concurrency, across every process sharing the backend: when many
      hits on a key race, exactly as many are allowed as fit the limit (50 concurrent
      cost-1 hits against a limit of 10 allow exactly 10), never more.
    - The window depends on the adapter and is documented there: memory and Redis run
      GCRA (`core.platform.gcra`: a burst of exactly `limit` units, then one unit every
      `window_seconds / limit`; at most `2 * limit - 1` in any span of the window);
      Memcached counts fixed windows aligned to the epoch (exact within each window,
      up to twice the limit across a boundary). On every adapter the long-run rate is
      `limit` per window, memory per key is O(1), the full limit is available again
      once `reset_after_seconds` has passed without hits, and a hit of the same cost is
      allowed once `retry_after_seconds` has passed without other hits.
    - A key's counts are kept per `window_seconds`: the same key with two different
      windows is two independent limits. Callers use a key per rule ("login:ip:...").
    - Arguments: `key` a non-empty str of at most `MAX_KEY_BYTES` UTF-8 bytes (any
      characters; adapters escape them); `1 <= limit <= MAX_LIMIT`;
      `1 <= window_seconds <= MAX_WINDOW_SECONDS` (whole seconds);
      `1 <= cost <= limit`. Anything else raises `ValueError` before any I/O.
    - `ping` checks that the backend answers.
    Backend failures and timeouts raise `UnavailableError(dependency="rate_limit")`
    within the client's timeouts. Callers decide whether to fail open (general limits,
    when configured) or closed (auth throttles: fall back to an in-process limiter).
    """

    @abstractmethod
    async def hit(
        self, key: str, limit: int, window_seconds: int, cost: int = 1
    ) -> RateLimitDecision: ...

    @abstractmethod
    async def ping(self) -> None: ...


class LocalRateLimiter(RateLimiter, Protocol):
    """A `RateLimiter` kept in this process's memory: it never raises `UnavailableError`.

    Its counts are this process's alone. What it is for: deciding while the shared
    limiter is down, where failing open is not allowed (sign-in throttles).
    """


def check_hit(key: object, limit: object, window_seconds: object, cost: object) -> None:
    """Raise ValueError unless the arguments of `RateLimiter.hit` are within the contract."""
    if not isinstance(key, str) or not key:
        raise ValueError("a rate-limit key must be a non-empty string")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValueError("a rate-limit key must be valid Unicode") from exc
    if size > MAX_KEY_BYTES:
        raise ValueError(f"a rate-limit key must be at most {MAX_KEY_BYTES} bytes")
    checked_limit = _check_int("limit", limit, 1, MAX_LIMIT)
    _check_int("window_seconds", window_seconds, 1, MAX_WINDOW_SECONDS)
    _check_int("cost", cost, 1, checked_limit)


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value

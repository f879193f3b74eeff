"""Stand-ins for a backing store that cannot be reached."""

from __future__ import annotations

from core.platform.rate_limit import RateLimitDecision
from core.shared.errors import UnavailableError


class UnreachableRateLimiter:
    """A `RateLimiter` whose store is down: every call raises `UnavailableError`.
    `calls` counts the hits that were tried and `keys` lists their keys in order, so a
    test can tell which caller (a general limit, the login throttle) asked."""

    def __init__(self) -> None:
        self.calls = 0
        self.keys: list[str] = []

    async def hit(
        self, key: str, limit: int, window_seconds: int, cost: int = 1
    ) -> RateLimitDecision:
        self.calls += 1
        self.keys.append(key)
        raise UnavailableError("connection refused", dependency="rate_limit")

    async def ping(self) -> None:
        raise UnavailableError("connection refused", dependency="rate_limit")

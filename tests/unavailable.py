"""Stand-ins for a backing store that cannot be reached."""

from __future__ import annotations

from core.platform.rate_limit import RateLimitDecision
from core.shared.errors import UnavailableError


class UnreachableRateLimiter:
    """A `RateLimiter` whose store is down: every call raises `UnavailableError`.
    `calls` counts the hits that were tried."""

    def __init__(self) -> None:
        self.calls = 0

    async def hit(
        self, key: str, limit: int, window_seconds: int, cost: int = 1
    ) -> RateLimitDecision:
        self.calls += 1
        raise UnavailableError("connection refused", dependency="rate_limit")

    async def ping(self) -> None:
        raise UnavailableError("connection refused", dependency="rate_limit")

"""Session lifetime rules, given to the services as a value (from settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle_timeout_seconds: int = 30 * 60
    absolute_lifetime_seconds: int = 12 * 60 * 60
    # Recording activity costs a store write; once a minute keeps the idle clock honest
    # to within a minute without a write on every request.
    touch_interval_seconds: int = 60

    def __post_init__(self) -> None:
        if self.idle_timeout_seconds <= 0 or self.absolute_lifetime_seconds <= 0:
            raise ValueError("session timeouts must be positive")
        if self.touch_interval_seconds < 0:
            raise ValueError("touch interval must not be negative")

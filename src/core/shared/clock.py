"""The clock port: the core never calls `datetime.now()` itself."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the current time.

    Contract: `now()` returns a timezone-aware datetime in UTC and never goes backwards
    within one process. Pure, no I/O, cannot fail.
    """

    @abstractmethod
    def now(self) -> datetime: ...

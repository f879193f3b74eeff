"""`Deadline`: the end of one chat model call (both adapters bound their calls with it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.conversations.errors import ModelTimeoutError


class Deadline:
    """`timeout_seconds` from now, on the running loop's clock.

    `bound()` limits the awaits inside it to what is left and turns running out into
    `ModelTimeoutError`. A stream bounds each await on its own, never a block holding a
    `yield`: `asyncio.timeout` cancels whichever task is current when it fires, which
    for a suspended generator would be its consumer, in the consumer's code. The time
    the consumer spends between items still counts, so the whole call (request to last
    item) ends within the timeout.
    """

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self.at = asyncio.get_running_loop().time() + timeout_seconds

    def remaining(self) -> float:
        return self.at - asyncio.get_running_loop().time()

    def error(self) -> ModelTimeoutError:
        return ModelTimeoutError(f"The model did not answer within {self.timeout_seconds:g} s.")

    @asynccontextmanager
    async def bound(self) -> AsyncIterator[None]:
        # Checked first: an await that need not suspend (data already buffered) would
        # otherwise finish after the deadline.
        if self.remaining() <= 0:
            raise self.error()
        try:
            async with asyncio.timeout_at(self.at):
                yield
        except TimeoutError as exc:
            raise self.error() from exc

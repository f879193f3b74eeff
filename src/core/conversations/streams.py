"""Iterators a streamed send answers with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


async def single(result: ResultT) -> AsyncIterator[ResultT]:
    """A stream of one item: the answer of a repeated send, made already."""
    yield result


async def relay(
    queue: asyncio.Queue[ItemT | None], task: asyncio.Task[ResultT]
) -> AsyncIterator[ItemT | ResultT]:
    """The items as the task puts them (None: the last was put), then its result (or
    its error). Cancelling this iterator (a client gone) leaves the task running to the
    end."""
    while (item := await queue.get()) is not None:
        yield item
    yield await task

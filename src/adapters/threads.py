"""Running blocking calls (hashing, synchronous drivers) off the event loop, bounded.

Shared by every adapter that must call blocking code: the loop keeps serving while at
most `max_concurrency` such calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ThreadOffload:
    """Runs blocking functions in threads, at most `max_concurrency` at a time per loop.

    A caller cancelled mid-call gives its slot back only when the thread has finished, so
    the bound holds for the CPU and memory actually in use.
    """

    def __init__(self, max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        # One semaphore per event loop: an asyncio.Semaphore binds to the loop it is
        # first used on, and tests (or a worker) may drive one adapter from several loops.
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        semaphore = self._semaphore()
        await semaphore.acquire()
        try:
            work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        except BaseException:
            semaphore.release()
            raise
        work.add_done_callback(lambda done: _release(semaphore, done))
        # Shielded: cancelling the caller must not free the slot while the thread runs.
        return await asyncio.shield(work)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.max_concurrency)
            self._semaphores[loop] = semaphore
        return semaphore


def _release(semaphore: asyncio.Semaphore, done: asyncio.Future[Any]) -> None:
    semaphore.release()
    if not done.cancelled():
        done.exception()  # marks it retrieved when the caller was cancelled and never will

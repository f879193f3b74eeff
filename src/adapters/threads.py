"""Running blocking calls (hashing, synchronous drivers) off the event loop, bounded.

Shared by every adapter that must call blocking code: the loop keeps serving while at
most `max_concurrency` such calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class ThreadOffload:
    """Runs blocking functions in threads, at most `max_concurrency` at a time per loop.

    Each offload owns its threads: on the loop's shared default executor a hung driver
    call would queue behind password hashes (and the reverse), and the bound would be
    the executor's, not ours. A caller cancelled mid-call gives its slot back only when
    the thread has finished, so the bound holds for the CPU and memory actually in use.

    `niceness` (Linux: per thread) lowers the threads' CPU priority below the event
    loop's, so CPU-bound work (password hashing) waits for the loop, never the reverse:
    requests that need no hash keep their latency while hashes run.
    """

    def __init__(self, max_concurrency: int, *, niceness: int = 0) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if not 0 <= niceness <= 19:
            raise ValueError("niceness must be between 0 and 19")
        self.max_concurrency = max_concurrency
        self.niceness = niceness
        # Per event loop: an asyncio.Semaphore binds to the loop it is first used on, and
        # tests (or a worker) may drive one adapter from several loops. The threads go
        # with their loop, so short-lived loops (tests) leave no idle threads behind.
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[asyncio.Semaphore, ThreadPoolExecutor]
        ] = weakref.WeakKeyDictionary()

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        semaphore, executor = self._for_loop(loop)
        await semaphore.acquire()
        try:
            call = functools.partial(contextvars.copy_context().run, fn, *args)
            work = asyncio.ensure_future(loop.run_in_executor(executor, call))
        except BaseException:
            semaphore.release()
            raise
        work.add_done_callback(lambda done: _release(semaphore, done))
        # Shielded: cancelling the caller must not free the slot while the thread runs.
        return await asyncio.shield(work)

    def _for_loop(
        self, loop: asyncio.AbstractEventLoop
    ) -> tuple[asyncio.Semaphore, ThreadPoolExecutor]:
        state = self._per_loop.get(loop)
        if state is None:
            executor = ThreadPoolExecutor(
                self.max_concurrency,
                thread_name_prefix="offload",
                initializer=_lower_priority,
                initargs=(self.niceness,),
            )
            state = (asyncio.Semaphore(self.max_concurrency), executor)
            self._per_loop[loop] = state
            weakref.finalize(loop, executor.shutdown, wait=False)
        return state


def _lower_priority(niceness: int) -> None:
    if niceness and hasattr(os, "setpriority"):
        # PRIO_PROCESS with a thread id: on Linux, one thread's niceness.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def _release(semaphore: asyncio.Semaphore, done: asyncio.Future[Any]) -> None:
    semaphore.release()
    if not done.cancelled():
        done.exception()  # marks it retrieved when the caller was cancelled and never will

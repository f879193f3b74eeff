"""Offloaded threads run below the event loop's priority when asked; the allocator is
tuned once per process."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from adapters.security.argon2 import HASH_THREAD_NICENESS, Argon2PasswordHasher
from adapters.threads import ThreadOffload
from entrypoints.bootstrap.allocator import tune_allocator

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's")


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux_only
async def test_offloaded_threads_take_the_niceness_they_are_given() -> None:
    loop_niceness = _own_niceness()
    assert await ThreadOffload(1, niceness=7).run(_own_niceness) == loop_niceness + 7
    assert await ThreadOffload(1).run(_own_niceness) == loop_niceness  # control
    assert _own_niceness() == loop_niceness  # the loop's own thread is untouched


@linux_only
async def test_password_hashes_run_below_the_loops_priority() -> None:
    hasher = Argon2PasswordHasher(time_cost=1, memory_cost_kib=1024, allow_weak=True)
    niceness = await hasher._threads.run(_own_niceness)
    assert niceness == _own_niceness() + HASH_THREAD_NICENESS


def test_niceness_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        ThreadOffload(1, niceness=20)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_allocator_is_tuned_once() -> None:
    assert tune_allocator() is True
    assert tune_allocator() is True

"""Keeping a process's resident memory bounded under glibc's allocator.

Two defaults of glibc's malloc grow a long-running server that hashes passwords:
- every thread that allocates gets an arena of its own (up to 8 per core), and an arena
  keeps what it once held; the hashing threads would each keep a password hash's worth;
- a large block freed raises the threshold above which blocks are mmap'd, so the next
  19 MiB argon2id block comes from an arena and stays there after it is freed.
`tune_allocator` caps the arenas at two and fixes the mmap threshold at 1 MiB, so large
blocks always go back to the OS when freed. It is the process setting itself what
`MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` would, before its threads start. Other
C libraries: nothing to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt(3) parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENA_MAX = 2
MMAP_THRESHOLD_BYTES = 1 << 20

_tuned = False


def tune_allocator() -> bool:
    """Apply the limits once per process; False where the C library is not glibc."""
    global _tuned
    if _tuned:
        return True
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _tuned = bool(mallopt(M_ARENA_MAX, ARENA_MAX)) and bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    )
    return _tuned

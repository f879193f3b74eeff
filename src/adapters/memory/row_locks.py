"""Row locks for in-memory repositories: what `SELECT ... FOR UPDATE` or a conditional
UPDATE gives a SQL transaction, held by one unit of work until it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class RowLocks(Generic[K]):
    """One lock per key (a user's credit account, a reservation, a usage counter), shared
    by every unit of work of one database. Keys are never forgotten: the in-memory
    database is for tests and the embedded profile, whose key sets stay small."""

    def __init__(self) -> None:
        self._locks: dict[K, asyncio.Lock] = {}

    def holder(self) -> HeldLocks[K]:
        """The locks of one unit of work (one per repository of the unit)."""
        return HeldLocks(self._locks)


class HeldLocks(Generic[K]):
    """The keys one unit of work has locked. `hold` waits while another unit holds the
    key; `release_all` is called when the unit commits, rolls back or ends.

    Like row locks, two units that take the same keys in opposite orders wait for each
    other for good (a database would abort one of them): take them in one order.
    """

    def __init__(self, locks: dict[K, asyncio.Lock]) -> None:
        self._locks = locks
        self._held: set[K] = set()

    async def hold(self, key: K) -> None:
        if key in self._held:
            return
        await self._locks.setdefault(key, asyncio.Lock()).acquire()
        self._held.add(key)

    def release_all(self) -> None:
        for key in self._held:
            self._locks[key].release()
        self._held.clear()

"""Rows by key for in-memory repositories: a table's committed rows overlaid with one
unit of work's pending ones, its unique columns checked at the write and again at
commit, and its row locks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from adapters.memory.row_locks import RowLocks
from adapters.memory.transaction import PendingWrites
from core.shared.errors import DomainError

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Unique(Generic[T]):
    """A unique column: its value in a row (None is NULL, never a duplicate) and the
    error a second row with that value raises."""

    value: Callable[[T], Hashable | None]
    error: Callable[[], DomainError]


@dataclass
class RowTable(Generic[K, T]):
    """The committed rows of one table, shared by every unit of work of one database."""

    rows: dict[K, T] = field(default_factory=dict)
    # Like a database sequence: ids are never reused, even after a rollback.
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Rows a unit of work wrote or locked, held until it ends (row locks).
    locks: RowLocks[K] = field(default_factory=RowLocks)


class PendingRows(PendingWrites, Generic[K, T]):
    """One unit of work's view of a `RowTable` (the base of a repository).

    Reads see the committed rows overlaid with this unit's writes. The key (the primary
    key) and every `Unique` column are checked when a row is written, against what this
    unit sees, and again at commit (`_check`) against what other units committed
    meanwhile, as the constraints do in SQL. `_hold` locks a row until the unit ends,
    as an UPDATE or `SELECT ... FOR UPDATE` does. Rows are frozen dataclasses, handed
    out as they are.
    """

    def __init__(
        self,
        table: RowTable[K, T],
        *,
        key: Callable[[T], K],
        exists_error: Callable[[], DomainError],
        uniques: Sequence[Unique[T]] = (),
    ) -> None:
        self._table = table
        self._key = key
        self._exists_error = exists_error
        self._uniques = tuple(uniques)
        self._held = table.locks.holder()
        self._pending: dict[K, T] = {}
        self._added: set[K] = set()

    def _get(self, key: K) -> T | None:
        if key in self._pending:
            return self._pending[key]
        return self._table.rows.get(key)

    def _rows(self) -> list[T]:
        """Every row this unit sees."""
        committed = (row for key, row in self._table.rows.items() if key not in self._pending)
        return [*self._pending.values(), *committed]

    def _duplicate(self, row: T, others: Iterable[T]) -> DomainError | None:
        key = self._key(row)
        rows = list(others)
        for unique in self._uniques:
            value = unique.value(row)
            if value is not None and any(
                self._key(other) != key and unique.value(other) == value for other in rows
            ):
                return unique.error()
        return None

    def _refuse_duplicate(self, row: T) -> None:
        """Raise if `row`, added, would repeat a key or a unique value this unit sees."""
        if self._get(self._key(row)) is not None:
            raise self._exists_error()
        error = self._duplicate(row, self._rows())
        if error is not None:
            raise error

    def _insert(self, row: T) -> T:
        self._refuse_duplicate(row)
        self._pending[self._key(row)] = row
        self._added.add(self._key(row))
        return row

    def _replace(self, row: T) -> T:
        error = self._duplicate(row, self._rows())
        if error is not None:
            raise error
        self._pending[self._key(row)] = row
        return row

    async def _hold(self, key: K) -> None:
        await self._held.hold(key)

    def _check(self) -> None:
        """Raise the error of a key this unit added that another unit committed
        meanwhile, or of a unique value now used twice."""
        if any(key in self._table.rows for key in self._added):
            raise self._exists_error()
        merged = {**self._table.rows, **self._pending}
        for row in self._pending.values():
            error = self._duplicate(row, merged.values())
            if error is not None:
                raise error

    def _commit(self) -> None:
        # Last commit wins for a row two units replaced, as for a SQL UPDATE; the
        # repositories hold the row's lock for writes that must not interleave.
        self._table.rows.update(self._pending)
        self._forget()

    def _rollback(self) -> None:
        self._forget()

    def _forget(self) -> None:
        self._pending.clear()
        self._added.clear()
        self._held.release_all()

"""Credit balances and their ledger in process memory, transactional like the SQL tables."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from adapters.memory.query import QueryEvaluator, dataclass_field_types
from adapters.memory.row_locks import RowLocks
from adapters.memory.transaction import PendingWrites
from core.billing.errors import IdempotencyKeyTakenError
from core.billing.model import LedgerEntry
from core.billing.ports import CreditLedger
from core.shared.errors import ConflictError
from core.shared.query import Condition, ListQuery, Operator, Page, PageRequest, SortKey

Exists = Callable[[int], Awaitable[bool]]

_ENTRY_QUERIES = QueryEvaluator(dataclass_field_types(LedgerEntry), pk="id")
# Ids follow the order entries were applied in (see `InMemoryCreditLedger`).
_NEWEST_FIRST = (SortKey("id", descending=True),)


@dataclass
class InMemoryCreditState:
    """The committed balances and ledger every unit of work of one database shares."""

    balances: dict[int, int] = field(default_factory=dict)
    # Each user's entries in the order they were applied.
    entries: dict[int, list[LedgerEntry]] = field(default_factory=dict)
    keys: dict[tuple[int, str], LedgerEntry] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # A user's credit account, locked by `apply` until the unit of work ends.
    accounts: RowLocks[int] = field(default_factory=RowLocks)


class InMemoryCreditLedger(CreditLedger, PendingWrites):
    """`CreditLedger` over an `InMemoryCreditState` (contract: the port).

    `apply` first locks the user's account until the unit of work ends, as the SQL
    adapter's conditional update locks the row: a second unit applying to the same user
    waits, then sees the first one's committed balance and entries. So while a unit
    holds the lock nobody else moves that balance, and the balance it computed is the
    one its commit stores: exact, however units interleave. Entries are numbered when
    applied, which under the lock is the order of the user's commits, so `entries`
    sorts on the id. `user_exists` and `reservation_exists` stand in for the foreign
    keys; their refusal (`ConflictError`), like a refused balance or a taken key,
    writes nothing.
    """

    def __init__(
        self, state: InMemoryCreditState, user_exists: Exists, reservation_exists: Exists
    ) -> None:
        self._state = state
        self._user_exists = user_exists
        self._reservation_exists = reservation_exists
        self._locks = state.accounts.holder()
        self._balances: dict[int, int] = {}
        self._added: list[LedgerEntry] = []

    async def balance(self, user_id: int) -> int:
        if user_id in self._balances:
            return self._balances[user_id]
        return self._state.balances.get(user_id, 0)

    async def find(self, user_id: int, idempotency_key: str) -> LedgerEntry | None:
        found = self._state.keys.get((user_id, idempotency_key))
        if found is not None:
            return found
        return next(
            (
                entry
                for entry in self._added
                if (entry.user_id, entry.idempotency_key) == (user_id, idempotency_key)
            ),
            None,
        )

    async def apply(self, entry: LedgerEntry) -> LedgerEntry | None:
        await self._locks.hold(entry.user_id)
        if await self.find(entry.user_id, entry.idempotency_key) is not None:
            raise IdempotencyKeyTakenError()
        balance = await self.balance(entry.user_id) + entry.delta
        if balance < 0:
            return None
        if not await self._user_exists(entry.user_id):
            raise ConflictError("The user of this ledger entry does not exist.")
        if entry.reservation_id is not None and not await self._reservation_exists(
            entry.reservation_id
        ):
            raise ConflictError("The reservation of this ledger entry does not exist.")
        stored = replace(
            entry, id=next(self._state.ids), balance_after=balance, created_at=datetime.now(UTC)
        )
        self._balances[entry.user_id] = balance
        self._added.append(stored)
        return stored

    async def entries(self, user_id: int, page: PageRequest) -> Page[LedgerEntry]:
        mine = [
            *self._state.entries.get(user_id, ()),
            *(entry for entry in self._added if entry.user_id == user_id),
        ]
        query = ListQuery(
            conditions=(Condition("user_id", Operator.EQ, user_id),), sort=_NEWEST_FIRST, page=page
        )
        found = _ENTRY_QUERIES.page(mine, query)
        return Page(items=found.items, next_cursor=found.next_cursor)

    async def total(self, user_id: int) -> int:
        committed = sum(entry.delta for entry in self._state.entries.get(user_id, ()))
        return committed + sum(entry.delta for entry in self._added if entry.user_id == user_id)

    def _check(self) -> None:
        """Raise `IdempotencyKeyTakenError` if a pending entry's key was committed
        meanwhile (the unique constraint). Under the account lock this cannot happen;
        the check keeps the constraint's guarantee independent of the locking."""
        if any((e.user_id, e.idempotency_key) in self._state.keys for e in self._added):
            raise IdempotencyKeyTakenError()

    def _commit(self) -> None:
        self._state.balances.update(self._balances)
        for entry in self._added:
            self._state.entries.setdefault(entry.user_id, []).append(entry)
            self._state.keys[(entry.user_id, entry.idempotency_key)] = entry
        self._forget()

    def _rollback(self) -> None:
        self._forget()

    def _forget(self) -> None:
        self._balances.clear()
        self._added.clear()
        self._locks.release_all()

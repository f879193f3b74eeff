"""Transactional bookkeeping shared by the in-memory token repositories.

One-time tokens and refresh tokens behave alike in a unit of work: rows are inserted,
stamped once (used, revoked) and purged, and a token being spent is claimed so that of
two racing transactions at most one wins. This holds the pending changes until commit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from adapters.memory.transaction import PendingWrites
from core.shared.errors import ConflictError


class TokenRow(Protocol):
    id: int | None
    token_hash: str
    expires_at: datetime


RowT = TypeVar("RowT", bound=TokenRow)


@dataclass
class TokenRowState(Generic[RowT]):
    """The committed rows every unit of work of one factory shares.

    `claims` maps the hash of a token being spent to the repository (one per open unit
    of work) spending it: the in-memory stand-in for a row lock.
    """

    tokens: dict[int, RowT] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    claims: dict[str, object] = field(default_factory=dict)


class PendingTokenRows(PendingWrites, Generic[RowT]):
    """Pending inserts, stamps and deletes of one unit of work over a `TokenRowState`.

    `STAMPS` names the timestamp fields that are set once (`used_at`, `revoked_at`): a
    row stamped meanwhile by another transaction keeps its first time at commit. Every
    method runs without awaiting, so each is atomic with respect to other tasks.
    """

    STAMPS: tuple[str, ...] = ()

    def __init__(self, state: TokenRowState[RowT]) -> None:
        self._state = state
        self._added: dict[int, RowT] = {}
        self._stamps: dict[str, dict[int, datetime]] = {name: {} for name in self.STAMPS}
        self._deleted: set[int] = set()
        self._claimed: set[str] = set()

    def _visible(self) -> list[RowT]:
        found = []
        for row_id, row in {**self._state.tokens, **self._added}.items():
            if row_id in self._deleted:
                continue
            for name, pending in self._stamps.items():
                at = pending.get(row_id)
                if at is not None and getattr(row, name) is None:
                    row = replace(row, **{name: at})  # type: ignore[type-var]
            found.append(row)
        return found

    def _by_hash(self, token_hash: str) -> RowT | None:
        return next((t for t in self._visible() if t.token_hash == token_hash), None)

    def _insert(self, row: RowT) -> RowT:
        # Checked against what this transaction sees; fingerprints of 256-bit tokens do
        # not collide, so no second check at commit.
        if self._by_hash(row.token_hash) is not None:
            raise ConflictError("A token with this fingerprint exists.")
        stored = replace(row, id=next(self._state.ids))  # type: ignore[type-var]
        assert stored.id is not None
        self._added[stored.id] = stored
        return replace(stored)  # type: ignore[type-var]

    def _stamp(self, name: str, row: RowT, at: datetime) -> bool:
        """Stamp `name` on the row unless it already carries one; True when stamped."""
        if row.id is None or getattr(row, name) is not None:
            return False
        self._stamps[name][row.id] = at
        return True

    def _claim(self, token_hash: str) -> bool:
        """Claim a token for this unit of work; False when another one holds it."""
        owner = self._state.claims.get(token_hash)
        if owner is not None and owner is not self:
            return False
        self._state.claims[token_hash] = self
        self._claimed.add(token_hash)
        return True

    def _purge_expired(self, now: datetime) -> int:
        doomed = [t.id for t in self._visible() if t.expires_at <= now and t.id is not None]
        self._deleted.update(doomed)
        return len(doomed)

    def _commit(self) -> None:
        """Apply the pending changes; the caller holds the state's lock."""
        tokens = self._state.tokens
        tokens.update(self._added)
        for name, pending in self._stamps.items():
            for row_id, at in pending.items():
                current: Any = tokens.get(row_id)
                if current is not None and getattr(current, name) is None:
                    tokens[row_id] = replace(current, **{name: at})
        for row_id in self._deleted:
            tokens.pop(row_id, None)
        self._rollback()

    def _rollback(self) -> None:
        self._added.clear()
        for pending in self._stamps.values():
            pending.clear()
        self._deleted.clear()
        for token_hash in self._claimed:
            if self._state.claims.get(token_hash) is self:
                del self._state.claims[token_hash]
        self._claimed.clear()

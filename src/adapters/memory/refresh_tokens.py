"""Refresh tokens in process memory, transactional like the SQL table."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.identity.model import RefreshToken
from core.identity.ports import RefreshTokenRepository
from core.shared.errors import ConflictError


@dataclass
class InMemoryRefreshTokenState:
    """The committed refresh tokens every unit of work of one factory shares.

    `claims` maps the hash of a token being used to the repository (one per open unit of
    work) that uses it: the in-memory stand-in for a row lock.
    """

    tokens: dict[int, RefreshToken] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    claims: dict[str, object] = field(default_factory=dict)


class InMemoryRefreshTokenRepository(RefreshTokenRepository):
    """`RefreshTokenRepository` over an `InMemoryRefreshTokenState` (contract: the port).

    Changes stay pending until the unit of work commits. `use` claims the token for this
    unit of work; another unit of work trying to use a claimed token gets None at once
    (where a database would make it wait for the first to finish), so of two racing users
    at most one ever wins. The claim is released at commit or rollback. A token used or
    revoked meanwhile by another transaction keeps its first time at commit. Every method
    runs without awaiting, so each is atomic with respect to other tasks.
    """

    def __init__(self, state: InMemoryRefreshTokenState) -> None:
        self._state = state
        self._added: dict[int, RefreshToken] = {}
        self._used: dict[int, datetime] = {}
        self._revoked: dict[int, datetime] = {}
        self._deleted: set[int] = set()
        self._claimed: set[str] = set()

    def _visible(self) -> list[RefreshToken]:
        found = []
        for token_id, token in {**self._state.tokens, **self._added}.items():
            if token_id in self._deleted:
                continue
            used_at = self._used.get(token_id)
            if used_at is not None and token.used_at is None:
                token = replace(token, used_at=used_at)
            revoked_at = self._revoked.get(token_id)
            if revoked_at is not None and token.revoked_at is None:
                token = replace(token, revoked_at=revoked_at)
            found.append(token)
        return found

    def _by_hash(self, token_hash: str) -> RefreshToken | None:
        return next((t for t in self._visible() if t.token_hash == token_hash), None)

    async def add(self, token: RefreshToken) -> RefreshToken:
        # Checked against what this transaction sees; fingerprints of 256-bit tokens do
        # not collide, so no second check at commit.
        if self._by_hash(token.token_hash) is not None:
            raise ConflictError("A token with this fingerprint exists.")
        stored = replace(token, id=next(self._state.ids))
        assert stored.id is not None
        self._added[stored.id] = stored
        return replace(stored)

    async def get(self, token_hash: str) -> RefreshToken | None:
        token = self._by_hash(token_hash)
        return replace(token) if token is not None else None

    async def use(self, token_hash: str, now: datetime) -> RefreshToken | None:
        token = self._by_hash(token_hash)
        if token is None or not token.is_usable(now):
            return None
        owner = self._state.claims.get(token_hash)
        if owner is not None and owner is not self:
            return None  # another open transaction is using it
        self._state.claims[token_hash] = self
        self._claimed.add(token_hash)
        assert token.id is not None
        self._used[token.id] = now
        return replace(token, used_at=now)

    def _revoke(self, tokens: list[RefreshToken], now: datetime) -> int:
        count = 0
        for token in tokens:
            if token.revoked_at is None and token.id is not None:
                self._revoked[token.id] = now
                count += 1
        return count

    async def revoke_family(self, family_id: str, now: datetime) -> int:
        return self._revoke([t for t in self._visible() if t.family_id == family_id], now)

    async def revoke_all_for_user(
        self, user_id: int, now: datetime, *, keep_family: str | None = None
    ) -> int:
        return self._revoke(
            [
                t
                for t in self._visible()
                if t.user_id == user_id and (keep_family is None or t.family_id != keep_family)
            ],
            now,
        )

    async def purge_expired(self, now: datetime) -> int:
        doomed = [t.id for t in self._visible() if t.expires_at <= now and t.id is not None]
        self._deleted.update(doomed)
        return len(doomed)

    def _commit(self) -> None:
        """Apply the pending changes; the caller holds the state's lock."""
        tokens = self._state.tokens
        tokens.update(self._added)
        for token_id, used_at in self._used.items():
            current = tokens.get(token_id)
            if current is not None and current.used_at is None:
                tokens[token_id] = replace(current, used_at=used_at)
        for token_id, revoked_at in self._revoked.items():
            current = tokens.get(token_id)
            if current is not None and current.revoked_at is None:
                tokens[token_id] = replace(current, revoked_at=revoked_at)
        for token_id in self._deleted:
            tokens.pop(token_id, None)
        self._rollback()

    def _rollback(self) -> None:
        self._added.clear()
        self._used.clear()
        self._revoked.clear()
        self._deleted.clear()
        for token_hash in self._claimed:
            if self._state.claims.get(token_hash) is self:
                del self._state.claims[token_hash]
        self._claimed.clear()

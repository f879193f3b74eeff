"""One-time tokens in process memory, transactional like the SQL table."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime

from core.identity.model import OneTimeToken, TokenPurpose
from core.identity.ports import OneTimeTokenRepository
from core.shared.errors import ConflictError


@dataclass
class InMemoryOneTimeTokenState:
    """The committed tokens every unit of work of one factory shares.

    `claims` maps the hash of a token being consumed to the repository (one per open
    unit of work) that consumes it: the in-memory stand-in for a row lock.
    """

    tokens: dict[int, OneTimeToken] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    claims: dict[str, object] = field(default_factory=dict)


class InMemoryOneTimeTokenRepository(OneTimeTokenRepository):
    """`OneTimeTokenRepository` over an `InMemoryOneTimeTokenState` (contract: the port).

    Changes stay pending until the unit of work commits. `consume` claims the token for
    this unit of work; another unit of work trying to consume a claimed token gets None
    at once (where a database would make it wait for the first to finish), so of two
    racing consumers at most one ever wins. The claim is released at commit or rollback.
    Every method runs without awaiting, so each is atomic with respect to other tasks.
    """

    def __init__(self, state: InMemoryOneTimeTokenState) -> None:
        self._state = state
        self._added: dict[int, OneTimeToken] = {}
        self._used: dict[int, datetime] = {}
        self._deleted: set[int] = set()
        self._claimed: set[str] = set()

    def _visible(self) -> list[OneTimeToken]:
        found = []
        for token_id, token in {**self._state.tokens, **self._added}.items():
            if token_id in self._deleted:
                continue
            used_at = self._used.get(token_id)
            if used_at is not None and token.used_at is None:
                token = replace(token, used_at=used_at)
            found.append(token)
        return found

    def _by_hash(self, token_hash: str) -> OneTimeToken | None:
        return next((t for t in self._visible() if t.token_hash == token_hash), None)

    async def add(self, token: OneTimeToken) -> OneTimeToken:
        # Checked against what this transaction sees; fingerprints of 256-bit tokens do
        # not collide, so no second check at commit.
        if self._by_hash(token.token_hash) is not None:
            raise ConflictError("A token with this fingerprint exists.")
        stored = replace(token, id=next(self._state.ids))
        assert stored.id is not None
        self._added[stored.id] = stored
        return replace(stored)

    async def find_usable(
        self, token_hash: str, purpose: TokenPurpose, now: datetime
    ) -> OneTimeToken | None:
        token = self._by_hash(token_hash)
        if token is None or token.purpose != purpose or not token.is_usable(now):
            return None
        return replace(token)

    async def consume(self, token_hash: str, purpose: TokenPurpose, now: datetime) -> int | None:
        token = self._by_hash(token_hash)
        if token is None or token.purpose != purpose or not token.is_usable(now):
            return None
        owner = self._state.claims.get(token_hash)
        if owner is not None and owner is not self:
            return None  # another open transaction is consuming it
        self._state.claims[token_hash] = self
        self._claimed.add(token_hash)
        assert token.id is not None
        self._used[token.id] = now
        return token.user_id

    async def invalidate_for_user(self, user_id: int, purpose: TokenPurpose, now: datetime) -> int:
        count = 0
        for token in self._visible():
            if token.user_id == user_id and token.purpose == purpose and token.used_at is None:
                assert token.id is not None
                self._used[token.id] = now
                count += 1
        return count

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
            # A token another transaction used meanwhile keeps its first use time.
            if current is not None and current.used_at is None:
                tokens[token_id] = replace(current, used_at=used_at)
        for token_id in self._deleted:
            tokens.pop(token_id, None)
        self._rollback()

    def _rollback(self) -> None:
        self._added.clear()
        self._used.clear()
        self._deleted.clear()
        for token_hash in self._claimed:
            if self._state.claims.get(token_hash) is self:
                del self._state.claims[token_hash]
        self._claimed.clear()

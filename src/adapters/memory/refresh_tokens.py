"""Refresh tokens in process memory, transactional like the SQL table."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from adapters.memory.token_rows import PendingTokenRows, TokenRowState
from core.identity.model import RefreshToken
from core.identity.ports import RefreshTokenRepository


class InMemoryRefreshTokenState(TokenRowState[RefreshToken]):
    """The committed refresh tokens every unit of work of one factory shares."""


class InMemoryRefreshTokenRepository(PendingTokenRows[RefreshToken], RefreshTokenRepository):
    """`RefreshTokenRepository` over an `InMemoryRefreshTokenState` (contract: the port).

    Changes stay pending until the unit of work commits. `use` claims the token for this
    unit of work; another unit of work trying to use a claimed token gets None at once
    (where a database would make it wait for the first to finish), so of two racing users
    at most one ever wins. The claim is released at commit or rollback. A token used or
    revoked meanwhile by another transaction keeps its first time at commit. Every method
    runs without awaiting, so each is atomic with respect to other tasks.
    """

    STAMPS = ("used_at", "revoked_at")

    async def add(self, token: RefreshToken) -> RefreshToken:
        return self._insert(token)

    async def get(self, token_hash: str) -> RefreshToken | None:
        token = self._by_hash(token_hash)
        return replace(token) if token is not None else None

    async def use(self, token_hash: str, now: datetime) -> RefreshToken | None:
        token = self._by_hash(token_hash)
        if token is None or not token.is_usable(now):
            return None
        if not self._claim(token_hash):
            return None  # another open transaction is using it
        self._stamp("used_at", token, now)
        return replace(token, used_at=now)

    def _revoke(self, tokens: list[RefreshToken], now: datetime) -> int:
        return sum(self._stamp("revoked_at", token, now) for token in tokens)

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
        return self._purge_expired(now)

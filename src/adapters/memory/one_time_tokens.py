"""One-time tokens in process memory, transactional like the SQL table."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from adapters.memory.token_rows import PendingTokenRows, TokenRowState
from core.identity.model import OneTimeToken, TokenPurpose
from core.identity.ports import OneTimeTokenRepository


class InMemoryOneTimeTokenState(TokenRowState[OneTimeToken]):
    """The committed one-time tokens every unit of work of one factory shares."""


class InMemoryOneTimeTokenRepository(PendingTokenRows[OneTimeToken], OneTimeTokenRepository):
    """`OneTimeTokenRepository` over an `InMemoryOneTimeTokenState` (contract: the port).

    Changes stay pending until the unit of work commits. `consume` claims the token for
    this unit of work; another unit of work trying to consume a claimed token gets None
    at once (where a database would make it wait for the first to finish), so of two
    racing consumers at most one ever wins. The claim is released at commit or rollback.
    Every method runs without awaiting, so each is atomic with respect to other tasks.
    """

    STAMPS = ("used_at",)

    async def add(self, token: OneTimeToken) -> OneTimeToken:
        return self._insert(token)

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
        if not self._claim(token_hash):
            return None  # another open transaction is consuming it
        self._stamp("used_at", token, now)
        return token.user_id

    async def invalidate_for_user(self, user_id: int, purpose: TokenPurpose, now: datetime) -> int:
        count = 0
        for token in self._visible():
            if token.user_id == user_id and token.purpose == purpose:
                count += self._stamp("used_at", token, now)
        return count

    async def purge_expired(self, now: datetime) -> int:
        return self._purge_expired(now)

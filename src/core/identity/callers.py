"""The per-request read behind every authenticated request: the caller's session, the
caller's cached user and the caller's general rate limit, in one round trip where the
stores allow it.

`CallerReader` is the port; `SeparateCallerReader` composes the three stores' own ports
(any backends, a round trip each); an adapter may do it in one (Redis: one script when
sessions, cache and rate limits share one server). `AuthenticationService` and
`TokenService` read callers through it and apply the rules (expiry, active users, token
cut-offs); what they get back is what the separate ports would have answered.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from core.identity.model import BrowserSession, User
from core.identity.ports import SessionStore
from core.identity.user_cache import CachedUsers, UserCache
from core.platform.cache import JsonValue
from core.platform.rate_limit import RateLimitDecision, RateLimiter
from core.shared.errors import UnavailableError


@dataclass(frozen=True, slots=True)
class TieredLimit:
    """The general limit of a signed-in caller: `by_tier[tier]` (else `default`) units
    per `window_seconds`, counted under `key(user_id)` on the `RateLimiter`."""

    name: str
    default: int
    window_seconds: int
    by_tier: Mapping[str, int] = field(default_factory=dict)

    def limit_for(self, tier_code: str) -> int:
        return self.by_tier.get(tier_code, self.default)

    @property
    def key_prefix(self) -> str:
        return f"{self.name}:user:"

    def key(self, user_id: int) -> str:
        return f"{self.key_prefix}{user_id}"


@dataclass(frozen=True, slots=True)
class CallerRead:
    """What one read found.

    - `session`: the session stored under the token hash (None: none, or not asked).
    - `user_id`: the caller's user (from the session, or the one asked for).
    - `entry`, `generation`: the user's cache entry and generation as the cache holds
      them (None: absent); `CachedUsers.get_fetched` turns them into a user.
    - `decision`: one hit counted against the general limit, for the tier of a current
      cached entry; None when no limit was asked for or the tier was not known (the
      caller then counts it with `RateLimiter.hit` once the user is loaded).
    - `cache_unavailable` / `limit_unavailable`: that store was down during the read
      (the user then comes from the database; the limit fails open or closed as the
      caller's policy says), so nobody asks it again for this request.
    """

    session: BrowserSession | None = None
    user_id: int | None = None
    entry: JsonValue = None
    generation: JsonValue = None
    decision: RateLimitDecision | None = None
    cache_unavailable: bool = False
    limit_unavailable: bool = False


@dataclass(frozen=True, slots=True)
class LimitRead:
    """The general limit as the caller's read left it: a `decision` already counted, or
    `unavailable` (the store was down), or neither (count it with `RateLimiter.hit`)."""

    decision: RateLimitDecision | None = None
    unavailable: bool = False

    @staticmethod
    def of(read: CallerRead) -> LimitRead:
        if read.decision is None and not read.limit_unavailable:
            return NO_LIMIT_READ
        return LimitRead(read.decision, read.limit_unavailable)


NO_LIMIT_READ = LimitRead()


class CallerReader(Protocol):
    """Reads a caller's session, cached user and general limit together.

    Contract:
    - `read_session(token_hash, limit)`: the session stored under `token_hash` as
      `SessionStore.get` returns it (expired or not: judging is the caller's), and for
      the user it names, `read_user`'s answer. No session: `CallerRead()`.
    - `read_user(user_id, limit)`: the user's cache entry and generation as `UserCache`
      keeps them; when `limit` is given and the entry is current (its generation is the
      user's current one), one hit on `limit.key(user_id)` against the limit of the
      entry's tier, as `RateLimiter.hit` decides it (the same algorithm and keys, so a
      request counted here and one counted by the limiter count against each other).
    - Nothing is written but that hit.
    Raises `UnavailableError` when the session store cannot be read (the caller cannot
    be identified); a cache or rate-limit store that is down while the session store
    answers gives a read without `entry` or `decision`, as the separate ports' callers
    treat them (the user comes from the database, the limit fails open or closed as
    configured).
    """

    @abstractmethod
    async def read_session(self, token_hash: str, limit: TieredLimit | None) -> CallerRead: ...

    @abstractmethod
    async def read_user(self, user_id: int, limit: TieredLimit | None) -> CallerRead: ...


class SeparateCallerReader(CallerReader):
    """`CallerReader` over the three stores' own ports: a round trip each (any backends).

    The general limit is counted only when the cached entry is current, exactly as a
    one-round-trip adapter counts it, so the two answer alike.
    """

    def __init__(self, sessions: SessionStore, users: UserCache, limiter: RateLimiter) -> None:
        self._sessions = sessions
        self._users = users
        self._limiter = limiter

    async def read_session(self, token_hash: str, limit: TieredLimit | None) -> CallerRead:
        session = await self._sessions.get(token_hash)
        if session is None:
            return CallerRead()
        read = await self.read_user(session.user_id, limit)
        return replace(read, session=session)

    async def read_user(self, user_id: int, limit: TieredLimit | None) -> CallerRead:
        try:
            entry, generation = await self._users.fetch(user_id)
        except UnavailableError:
            return CallerRead(user_id=user_id, cache_unavailable=True)
        tier = UserCache.current_tier(entry, generation)
        if limit is None or tier is None:
            return CallerRead(user_id=user_id, entry=entry, generation=generation)
        try:
            decision = await self._limiter.hit(
                limit.key(user_id), limit.limit_for(tier), limit.window_seconds
            )
        except UnavailableError:
            return CallerRead(
                user_id=user_id, entry=entry, generation=generation, limit_unavailable=True
            )
        return CallerRead(user_id=user_id, entry=entry, generation=generation, decision=decision)


async def caller_user(users: CachedUsers, read: CallerRead) -> User | None:
    """The active user of a read: the cached entry when current, else the database
    (straight there when the cache was down during the read)."""
    if read.user_id is None:
        return None
    if read.cache_unavailable:
        return await users.get_uncached(read.user_id)
    return await users.get_fetched(read.user_id, read.entry, read.generation)

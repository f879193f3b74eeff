"""The per-request user read, cache-aside, and forgetting a user whenever it changes.

Every authenticated request needs its user (the session's, or the access token's with its
`tokens_valid_after`). `CachedUsers.get` serves it from the `Cache` (through `UserCache`)
for a short TTL and reads the database only on a miss. `InvalidatingUnitOfWorkFactory`
(`user_invalidation.py`) wraps the identity unit-of-work factory the services use: every
user a unit writes through its `users` repository is forgotten right after that unit
commits, so no use case has to remember to do it (logout-all, password change and reset,
deletion, profile and verification changes, rehashing, OAuth sign-up: all write through
the repository).

How fresh a cached user is:
- After a change commits, the next read anywhere sees it: `forget` gives the user a new
  *generation*, and an entry counts only while it carries the current one.
- A reader that loaded the user before the commit and stores it after the `forget` (the
  classic cache-aside race) stores it under the generation it read *before* loading, which
  is no longer current: the stale copy is never served. (A plain delete would let it live
  for the whole TTL.)
- A missing generation (never set, expired, evicted) makes every entry of the user miss.
- If the cache is unreachable while a change commits, the change still succeeds and the
  old entry may survive the outage. That is what the short TTL is for: no entry is served
  longer than `ttl_seconds` after it was loaded, so the staleness of a missed
  invalidation is bounded by the TTL, never open-ended. A per-process cache (the memory
  adapter) never hears of changes made by other processes at all, so bootstrap keeps the
  TTL at one second there.

Only active users are cached (`UserRepository.get` hides deleted ones; deactivated ones
are dropped on load), and a miss is never cached: a deleted or deactivated user is always
reloaded, and refused. The password hash is never
copied into the cache: users read here carry `password_hash == ""` (hit or miss alike),
and every use case that checks a password reads the user from the database.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from core.identity.model import Email, User, Username
from core.identity.ports import IdentityUnitOfWorkFactory
from core.platform.cache import MAX_TTL_SECONDS, Cache, JsonInput, JsonValue
from core.platform.cache_codec import check_ttl
from core.platform.telemetry import Telemetry
from core.shared.errors import UnavailableError

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 30
# What a cached user carries instead of the password hash (never a valid hash).
UNCACHED_PASSWORD_HASH = ""
# Bumped when the cached layout changes: entries of another layout then miss.
_LAYOUT = 2  # 2: `deactivated_at`
_GENERATION_BYTES = 9  # 72 random bits: generations never repeat in practice
CACHE_NAME = "users"  # in `portico_cache_requests_total`


USER_KEY_PREFIX = "identity:user:"
GENERATION_SUFFIX = ":generation"


def user_key(user_id: int) -> str:
    return f"{USER_KEY_PREFIX}{user_id}"


def generation_key(user_id: int) -> str:
    return f"{USER_KEY_PREFIX}{user_id}{GENERATION_SUFFIX}"


# --- the codec ------------------------------------------------------------------------


def encode_user(user: User) -> dict[str, JsonInput]:
    """Every field of `user` as JSON, except the password hash (never cached)."""
    return {
        "layout": _LAYOUT,
        "id": user.id,
        "email": str(user.email),
        "username": str(user.username),
        "tier_code": user.tier_code,
        "is_superuser": user.is_superuser,
        "email_verified": user.email_verified,
        "created_at": _encode_time(user.created_at),
        "updated_at": _encode_time(user.updated_at),
        "deleted_at": _encode_time(user.deleted_at),
        "deactivated_at": _encode_time(user.deactivated_at),
        "tokens_valid_after": _encode_time(user.tokens_valid_after),
    }


def decode_user(document: JsonValue) -> User:
    """The `User` of `encode_user`'s document, with `UNCACHED_PASSWORD_HASH`.

    Strict: a missing field, a field of the wrong type or another layout raises
    KeyError, TypeError or ValueError (the caller then reloads from the database).
    The email and username are rebuilt with `Email.stored`/`Username.stored`: they are
    what the database held, not new input to validate.
    """
    if not isinstance(document, dict):
        raise TypeError("a cached user is a JSON object")
    if document["layout"] != _LAYOUT:
        raise ValueError("a cached user of another layout")
    user_id = document["id"]
    if user_id is not None and (not isinstance(user_id, int) or isinstance(user_id, bool)):
        raise TypeError("id")
    return User(
        id=user_id,
        email=Email.stored(_text(document, "email")),
        username=Username.stored(_text(document, "username")),
        password_hash=UNCACHED_PASSWORD_HASH,
        tier_code=_text(document, "tier_code"),
        is_superuser=_flag(document, "is_superuser"),
        email_verified=_flag(document, "email_verified"),
        created_at=_decode_time(document, "created_at"),
        updated_at=_decode_time(document, "updated_at"),
        deleted_at=_decode_time(document, "deleted_at"),
        deactivated_at=_decode_time(document, "deactivated_at"),
        tokens_valid_after=_decode_time(document, "tokens_valid_after"),
    )


def _encode_time(moment: datetime | None) -> str | None:
    # ISO 8601 keeps microseconds and the offset (or its absence) exactly.
    return moment.isoformat() if moment is not None else None


def _decode_time(document: Mapping[str, JsonValue], name: str) -> datetime | None:
    value = document[name]
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(name)
    return datetime.fromisoformat(value)


def _text(document: Mapping[str, JsonValue], name: str) -> str:
    value = document[name]
    if not isinstance(value, str):
        raise TypeError(name)
    return value


def _flag(document: Mapping[str, JsonValue], name: str) -> bool:
    value = document[name]
    if not isinstance(value, bool):
        raise TypeError(name)
    return value


# --- the cache side and the lookup ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserCachePolicy:
    """How long a user is served from the cache after it was loaded (see the module doc:
    this bounds how stale a missed invalidation can leave it)."""

    ttl_seconds: int = DEFAULT_TTL_SECONDS

    def __post_init__(self) -> None:
        check_ttl(self.ttl_seconds)


class UserCache:
    """The cached side of the user read: entries, generations, and forgetting.

    A cache that is down (`UnavailableError`) is skipped: `read` reports a miss that must
    not be stored, `forget` logs and returns, so an outage costs latency, never a failed
    request or a failed write. Every read is reported as a hit or a miss (a cache that
    is down: a miss) to `Telemetry.cache_request` under `users`.
    """

    def __init__(self, cache: Cache, policy: UserCachePolicy, telemetry: Telemetry) -> None:
        self._cache = cache
        self._telemetry = telemetry
        self._ttl = policy.ttl_seconds
        # A generation outlives the entries stamped with it (if it goes first, they
        # only miss), so a steady reader rewrites it rarely.
        self._generation_ttl = min(MAX_TTL_SECONDS, 4 * self._ttl)

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    async def read(self, user_id: int) -> tuple[User | None, str | None]:
        """`(user, None)` on a hit; on a miss `(None, generation)`, the generation to
        `store` the loaded user under, or `(None, None)` when nothing may be stored."""
        try:
            entry, generation = await self.fetch(user_id)
        except UnavailableError:
            logger.warning("cache unavailable; user read from the database")
            self.report_unavailable()
            return None, None
        return await self.interpret(user_id, entry, generation)

    def report_unavailable(self) -> None:
        """Count a read the cache could not answer (it was down) as a miss."""
        self._telemetry.cache_request(CACHE_NAME, False)

    async def fetch(self, user_id: int) -> tuple[JsonValue, JsonValue]:
        """The raw entry and generation (None: absent); `UnavailableError` when the
        cache is down."""
        key, current_key = user_key(user_id), generation_key(user_id)
        found = await self._cache.get_many((key, current_key))
        return found.get(key), found.get(current_key)

    @staticmethod
    def current_tier(entry: JsonValue, generation: JsonValue) -> str | None:
        """The tier of a current entry (its generation is the user's), else None."""
        if not isinstance(generation, str) or not isinstance(entry, dict):
            return None
        user = entry.get("user")
        if entry.get("generation") != generation or not isinstance(user, dict):
            return None
        tier = user.get("tier_code")
        return tier if isinstance(tier, str) else None

    async def interpret(
        self, user_id: int, entry: JsonValue, generation: JsonValue
    ) -> tuple[User | None, str | None]:
        """`read` for an entry and a generation fetched elsewhere (None: absent), e.g.
        together with the session in one round trip; same answers, same writes."""
        if isinstance(generation, str):
            if isinstance(entry, dict) and entry.get("generation") == generation:
                try:
                    cached = decode_user(entry.get("user"))
                except (KeyError, TypeError, ValueError):
                    logger.warning("cached user no longer decodes; reloading")
                else:
                    if cached.id == user_id:
                        self._telemetry.cache_request(CACHE_NAME, True)
                        return cached, None
            self._telemetry.cache_request(CACHE_NAME, False)
            return None, generation
        self._telemetry.cache_request(CACHE_NAME, False)
        # Made before loading, so a change committed after the load replaces it.
        generation = _new_generation()
        if not await self._write(generation_key(user_id), generation, self._generation_ttl):
            return None, None
        return None, generation

    async def store(self, user: User, generation: str) -> None:
        """Keep `user` (loaded after `read` gave `generation`) for `ttl_seconds`."""
        if user.id is None:
            return
        document: dict[str, JsonInput] = {"generation": generation, "user": encode_user(user)}
        await self._write(user_key(user.id), document, self._ttl)

    async def forget(self, user_id: int) -> None:
        """Make every cached copy of the user miss from now on. Never raises for a cache
        that is down: the change that calls it has committed already."""
        if not await self._write(generation_key(user_id), _new_generation(), self._generation_ttl):
            logger.warning(
                "cache unavailable; a changed user may be served from the cache until "
                "its entry expires",
                extra={"user_id": user_id, "ttl_seconds": self._ttl},
            )

    async def forget_all(self, user_ids: Iterable[int]) -> None:
        for user_id in sorted(set(user_ids)):
            await self.forget(user_id)

    async def _write(self, key: str, value: JsonInput, ttl_seconds: int) -> bool:
        try:
            await self._cache.set(key, value, ttl_seconds)
        except UnavailableError:
            return False
        return True


class CachedUsers:
    """`get`: the active user with this id (None for a deleted or deactivated one),
    served by `UserCache` and read from the database only on a miss. Database errors
    propagate and nothing is cached; a miss is never cached (such users stay refused).

    Concurrent misses of one user under one generation share one load (a burst after
    the entry expired costs one query, not one per request in flight). A load is shared
    only with readers that saw the same generation, so a reader that comes after a
    change (which gave the user a new generation) never gets a user loaded before it.
    """

    def __init__(self, uow: IdentityUnitOfWorkFactory, cache: UserCache) -> None:
        self._uow = uow
        self._cache = cache
        self._loading: dict[tuple[int, str], asyncio.Future[User | None]] = {}

    @property
    def cache(self) -> UserCache:
        return self._cache

    async def get(self, user_id: int) -> User | None:
        cached, generation = await self._cache.read(user_id)
        return await self._settle(user_id, cached, generation)

    async def get_fetched(
        self, user_id: int, entry: JsonValue, generation: JsonValue
    ) -> User | None:
        """`get` for a cache entry and generation already fetched (see `UserCache.interpret`)."""
        cached, current = await self._cache.interpret(user_id, entry, generation)
        return await self._settle(user_id, cached, current)

    async def get_uncached(self, user_id: int) -> User | None:
        """The user from the database, the cache untouched (it is known to be down)."""
        self._cache.report_unavailable()
        return await self._load(user_id)

    async def _settle(
        self, user_id: int, cached: User | None, generation: str | None
    ) -> User | None:
        if cached is not None:
            # Never cached inactive; checked anyway, as a hit is all a request sees.
            return cached if cached.is_active else None
        if generation is None:  # the cache is down: nothing to share or store
            return await self._load(user_id)
        key = (user_id, generation)
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load_and_store(user_id, generation))
            self._loading[key] = loading
            loading.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: one reader giving up must not cancel the load the others wait for.
        return await asyncio.shield(loading)

    def _finished(self, key: tuple[int, str], done: asyncio.Future[User | None]) -> None:
        self._loading.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here: every reader may have given up meanwhile

    async def _load_and_store(self, user_id: int, generation: str) -> User | None:
        user = await self._load(user_id)
        if user is not None:
            await self._cache.store(user, generation)
        return user

    async def forget(self, user_id: int) -> None:
        await self._cache.forget(user_id)

    async def _load(self, user_id: int) -> User | None:
        async with self._uow(read_only=True) as tx:
            user = await tx.users.get(user_id)
        if user is None or not user.is_active:
            return None
        # What a hit returns, so callers see one shape whether the cache answered or not.
        return user.copy(password_hash=UNCACHED_PASSWORD_HASH)


def _new_generation() -> str:
    return secrets.token_urlsafe(_GENERATION_BYTES)

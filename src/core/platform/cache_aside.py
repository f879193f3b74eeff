"""Read-through caching that never makes a request fail because of the cache."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from core.platform.cache import Cache, CacheValueTooLargeError, JsonInput, JsonValue
from core.platform.cache_codec import check_key, check_tags, check_ttl, decode_value
from core.platform.cache_codec import encode_value as _encode_json
from core.shared.errors import UnavailableError

T = TypeVar("T")

logger = logging.getLogger(__name__)


# No slots: with them, `CacheCodec[Tier](...)` fails (typing sets `__orig_class__`).
@dataclass(frozen=True)
class CacheCodec(Generic[T]):
    """Turns a caller's type into JSON and back (a dataclass into a dict, for example).

    `decode` may raise ValueError, TypeError or KeyError on data it no longer
    understands (a field renamed between deploys); `CacheAside` then treats the entry
    as a miss and reloads it.
    """

    encode: Callable[[T], JsonInput]
    decode: Callable[[JsonValue], T]


class CacheAside:
    """Cache-aside over a `Cache`: look up, on a miss load from the source and store.

    - A cache that is down (`UnavailableError`) is skipped: `get_or_load` calls the
      loader directly and returns its value, so an outage costs latency, not errors.
    - Loader errors propagate and nothing is cached, so a failure is retried on the
      next call instead of being served from the cache.
    - A None result (from the loader or from `codec.encode`) is returned but never
      cached: a stored null would read as a miss anyway.
    - A value too large for the cache is returned uncached (and logged). Values that
      are not JSON at all raise `ValueError`: that is a bug in the caller, and it
      surfaces whether or not the cache is up.
    - Without a codec, every call returns what a cache hit would: the JSON round trip of
      the loaded value (tuples become lists), so hits and misses look the same.
    Concurrent misses on one key each call the loader (no request coalescing).
    """

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    @overload
    async def get_or_load(
        self,
        key: str,
        ttl_seconds: int,
        loader: Callable[[], Awaitable[JsonInput]],
        *,
        tags: Iterable[str] = (),
    ) -> JsonValue: ...

    @overload
    async def get_or_load(
        self,
        key: str,
        ttl_seconds: int,
        loader: Callable[[], Awaitable[T]],
        *,
        codec: CacheCodec[T],
        tags: Iterable[str] = (),
    ) -> T: ...

    async def get_or_load(
        self,
        key: str,
        ttl_seconds: int,
        loader: Callable[[], Awaitable[Any]],
        *,
        codec: CacheCodec[Any] | None = None,
        tags: Iterable[str] = (),
    ) -> Any:
        # Checked up front so a bad argument fails the same way when the cache is down.
        check_key(key)
        check_ttl(ttl_seconds)
        tag_list = check_tags(tags)

        hit = await self._lookup(key)
        if hit is not None:
            if codec is None:
                return hit
            try:
                return codec.decode(hit)
            except (ValueError, TypeError, KeyError):
                logger.warning("cache entry no longer decodes; reloading", extra={"key": key})

        loaded = await loader()
        document = codec.encode(loaded) if codec is not None else loaded
        if document is None:
            return loaded
        try:
            payload = _encode_json(document)
        except CacheValueTooLargeError:
            logger.warning("value too large to cache; served uncached", extra={"key": key})
            return loaded
        await self._store(key, document, ttl_seconds, tag_list)
        return loaded if codec is not None else decode_value(payload)

    async def _lookup(self, key: str) -> JsonValue:
        try:
            return await self._cache.get(key)
        except UnavailableError:
            logger.warning("cache unavailable; loading from the source", extra={"key": key})
            return None

    async def _store(
        self, key: str, document: JsonInput, ttl_seconds: int, tags: tuple[str, ...]
    ) -> None:
        try:
            await self._cache.set(key, document, ttl_seconds, tags=tags)
        except UnavailableError:
            logger.warning("cache unavailable; value not stored", extra={"key": key})


async def cached(
    cache: Cache,
    key: str,
    ttl_seconds: int,
    loader: Callable[[], Awaitable[JsonInput]],
    *,
    tags: Iterable[str] = (),
) -> JsonValue:
    """`CacheAside(cache).get_or_load(key, ttl_seconds, loader, tags=tags)`."""
    return await CacheAside(cache).get_or_load(key, ttl_seconds, loader, tags=tags)

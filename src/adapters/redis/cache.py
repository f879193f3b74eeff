"""The cache in Redis."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis

from adapters.redis.client import LuaScript, translate_errors
from core.platform.cache import DEPENDENCY, Cache, JsonInput, JsonValue
from core.platform.cache_codec import (
    StoredEntry,
    check_amount,
    check_key,
    check_keys,
    check_tags,
    check_ttl,
    decode_entry,
    encode_entry,
    encode_value,
    new_tag_version,
)

# Key layout under the prefix P:
#   P k:<key>   string: an entry (see core.platform.cache_codec) or a counter   TTL = ttl
#   P t:<tag>   string: the tag's current version       TTL >= every entry stamped with it
# Redis keys are binary-safe, so callers' keys are used as they are.

# KEYS: tag keys. ARGV[1]: the entry's TTL; ARGV[1 + i]: a fresh version for KEYS[i],
# used only if that tag has none. Returns each tag's version. A tag's version must
# outlive every entry stamped with it (a lapsed version only makes entries miss, but
# needlessly), so its TTL is pushed to at least the entry's.
_STAMP_TAGS = """
local ttl = tonumber(ARGV[1])
local versions = {}
for i, key in ipairs(KEYS) do
  local version = redis.call('GET', key)
  if not version then
    version = ARGV[i + 1]
    redis.call('SET', key, version, 'EX', ttl)
  elseif redis.call('TTL', key) < ttl then
    redis.call('EXPIRE', key, ttl)
  end
  versions[i] = version
end
return versions
"""

# KEYS[1]: the counter. ARGV: amount, TTL in seconds (0: none). Returns the new value,
# or false (nil) when the key holds something other than a non-negative integer or the
# sum would overflow, so the caller can say ValueError instead of "Redis is down".
_INCR = """
local current = redis.call('GET', KEYS[1])
if current and not string.match(current, '^%d+$') then return false end
local value = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(value) == 'table' then return false end
if not current and tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return value
"""


class RedisCache(Cache):
    """A `Cache` in Redis, shared by every process.

    Contract (from `Cache`):
    - Keys live under `key_prefix` (`P k:<key>`, tag versions under `P t:<tag>`); TTLs
      are Redis' own (millisecond precision).
    - `set` without tags is one SET with EX. With tags, one script first gives each tag
      a version (creating missing ones, pushing their TTL to at least the entry's),
      then the entry is SET stamped with those versions; an invalidation landing
      between the two only makes the new entry miss.
    - `get`/`get_many` read entries with GET/MGET and, for tagged entries, the tag
      versions with one more MGET; an entry whose versions changed is a miss.
    - `invalidate_tag` deletes the tag's version: O(1), whatever the number of entries.
    - `incr` is one script: INCRBY, plus EXPIRE only when it created the counter.
    - `ping` sends PING.
    Every Redis or network failure raises `UnavailableError(dependency="cache")` within
    the client's timeouts (see `create_redis`). Scripts name every key they touch, so a
    Redis Cluster works as long as the tags of one entry share a slot (a hash tag in the
    prefix, `{cache}:`, puts everything in one); a standalone Redis needs nothing.
    """

    def __init__(self, client: aioredis.Redis, *, key_prefix: str = "portico:cache:") -> None:
        self._redis = client
        self._prefix = key_prefix
        self._stamp_tags = LuaScript(client, _STAMP_TAGS)
        self._incr = LuaScript(client, _INCR)

    async def get(self, key: str) -> JsonValue:
        found = await self._fetch([check_key(key)])
        return found.get(key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, JsonValue]:
        wanted = list(dict.fromkeys(check_keys(keys)))
        return await self._fetch(wanted) if wanted else {}

    async def set(
        self, key: str, value: JsonInput, ttl_seconds: int, *, tags: Iterable[str] = ()
    ) -> None:
        check_key(key)
        ttl = check_ttl(ttl_seconds)
        tag_list = check_tags(tags)
        payload = encode_value(value)
        async with translate_errors(DEPENDENCY):
            versions: dict[str, str] = {}
            if tag_list:
                stamped = await self._stamp_tags(
                    keys=[self._tag_key(t) for t in tag_list],
                    args=[ttl, *(new_tag_version() for _ in tag_list)],
                )
                versions = dict(zip(tag_list, (_text(v) for v in stamped), strict=True))
            await self._redis.set(self._entry_key(key), encode_entry(payload, versions), ex=ttl)

    async def delete(self, key: str) -> None:
        check_key(key)
        async with translate_errors(DEPENDENCY):
            await self._redis.delete(self._entry_key(key))

    async def incr(self, key: str, amount: int = 1, ttl_seconds: int | None = None) -> int:
        check_key(key)
        check_amount(amount)
        ttl = 0 if ttl_seconds is None else check_ttl(ttl_seconds)
        async with translate_errors(DEPENDENCY):
            value = await self._incr(keys=[self._entry_key(key)], args=[amount, ttl])
        if value is None:
            raise ValueError("the entry under this key is not a counter (or would overflow)")
        return int(value)

    async def invalidate_tag(self, tag: str) -> None:
        check_key(tag, what="tag")
        async with translate_errors(DEPENDENCY):
            await self._redis.delete(self._tag_key(tag))

    async def ping(self) -> None:
        async with translate_errors(DEPENDENCY):
            await self._redis.ping()

    async def _fetch(self, keys: Sequence[str]) -> dict[str, JsonValue]:
        async with translate_errors(DEPENDENCY):
            raws = await self._redis.mget([self._entry_key(k) for k in keys])
            entries: dict[str, StoredEntry] = {}
            for key, raw in zip(keys, raws, strict=True):
                entry = decode_entry(_bytes(raw)) if raw is not None else None
                if entry is not None:
                    entries[key] = entry
            tags = list(dict.fromkeys(t for e in entries.values() for t in e.tag_versions))
            current: dict[str, str | None] = {}
            if tags:
                stored = await self._redis.mget([self._tag_key(t) for t in tags])
                current = {
                    t: _text(v) if v is not None else None
                    for t, v in zip(tags, stored, strict=True)
                }
        return {k: e.value for k, e in entries.items() if e.is_current(current)}

    def _entry_key(self, key: str) -> str:
        return entry_key(self._prefix, key)

    def _tag_key(self, tag: str) -> str:
        return f"{self._prefix}t:{tag}"


def entry_key(prefix: str, key: str) -> str:
    return f"{prefix}k:{key}"


def untagged_value(raw: bytes | str | None) -> JsonValue:
    """The value of a raw untagged entry; None when absent, tagged or unreadable (a
    tagged entry needs its tags' versions, which only `RedisCache` reads)."""
    if raw is None:
        return None
    entry = decode_entry(_bytes(raw))
    if entry is None or entry.tag_versions:
        return None
    return entry.value


# Both work whichever `decode_responses` the injected client was built with.
def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")

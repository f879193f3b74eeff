"""The cache in Memcached."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from adapters.memcached.client import MemcachedClient, translate_errors
from adapters.memcached.keys import check_prefix, memcached_key
from adapters.threads import ThreadOffload
from core.platform.cache import DEPENDENCY, MAX_TTL_SECONDS, Cache, JsonInput, JsonValue
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

# How often `incr` retries when its counter vanishes between a failed incr and a failed
# add (deleted or evicted in between); more than that is a server in trouble.
_INCR_ATTEMPTS = 3


class MemcachedCache(Cache):
    """A `Cache` in Memcached, shared by every process.

    Contract (from `Cache`):
    - Keys: `key_prefix` + `k:` + key for entries, `key_prefix` + `t:` + tag for tag
      versions, escaped by `memcached_key` (long or unusual keys become a SHA-256).
    - TTLs are Memcached's, counted in whole seconds by the server: an entry may expire
      up to one second before `ttl_seconds`, never after.
    - Tags: an entry records the version of each of its tags; `invalidate_tag` deletes
      the version (O(1)), and the next `set` with the tag creates a new random one with
      `add`, so concurrent writers agree on it. Tag versions live `MAX_TTL_SECONDS`
      and may be evicted; either only makes the entries that carry them miss.
    - `get`/`get_many` cost one multi-get for the entries and, for tagged entries, one
      for their tags' versions.
    - `incr` is Memcached's atomic incr; a missing counter is created with `add` (which
      only one concurrent caller can win; the others incr what it created). The TTL is
      set by that `add` only.
    - Every pymemcache call runs in a thread of `offload`, never on the event loop;
      `ping` asks every server for its version.
    Failures and timeouts raise `UnavailableError(dependency="cache")` within the
    client's timeouts (see `create_memcached`).
    """

    def __init__(
        self,
        client: MemcachedClient,
        *,
        key_prefix: str = "portico:cache:",
        offload: ThreadOffload,
    ) -> None:
        if offload.max_concurrency > client.max_pool_size:
            raise ValueError("offload may run more calls than the client has connections")
        self._client = client
        self._prefix = check_prefix(key_prefix)
        self._offload = offload

    async def get(self, key: str) -> JsonValue:
        found = await self._run_fetch([check_key(key)])
        return found.get(key)

    async def get_many(self, keys: Iterable[str]) -> dict[str, JsonValue]:
        wanted = list(dict.fromkeys(check_keys(keys)))
        return await self._run_fetch(wanted) if wanted else {}

    async def set(
        self, key: str, value: JsonInput, ttl_seconds: int, *, tags: Iterable[str] = ()
    ) -> None:
        check_key(key)
        ttl = check_ttl(ttl_seconds)
        tag_list = check_tags(tags)
        payload = encode_value(value)
        async with translate_errors(DEPENDENCY):
            await self._offload.run(self._store, key, payload, ttl, tag_list)

    async def delete(self, key: str) -> None:
        check_key(key)
        async with translate_errors(DEPENDENCY):
            await self._offload.run(self._client.delete, self._entry_key(key))

    async def incr(self, key: str, amount: int = 1, ttl_seconds: int | None = None) -> int:
        check_key(key)
        check_amount(amount)
        ttl = 0 if ttl_seconds is None else check_ttl(ttl_seconds)  # 0: no expiry
        async with translate_errors(DEPENDENCY):
            return await self._offload.run(self._increment, self._entry_key(key), amount, ttl)

    async def invalidate_tag(self, tag: str) -> None:
        check_key(tag, what="tag")
        async with translate_errors(DEPENDENCY):
            await self._offload.run(self._client.delete, self._tag_key(tag))

    async def ping(self) -> None:
        async with translate_errors(DEPENDENCY):
            await self._offload.run(self._client.ping)

    async def _run_fetch(self, keys: Sequence[str]) -> dict[str, JsonValue]:
        async with translate_errors(DEPENDENCY):
            return await self._offload.run(self._fetch, keys)

    # The methods below block; they run in the offload's threads.

    def _fetch(self, keys: Sequence[str]) -> dict[str, JsonValue]:
        by_memcached_key = {self._entry_key(k): k for k in keys}
        raws = self._client.get_many(by_memcached_key)
        entries: dict[str, StoredEntry] = {}
        for stored_key, raw in raws.items():
            entry = decode_entry(raw)
            if entry is not None:
                entries[by_memcached_key[stored_key]] = entry
        tags = list(dict.fromkeys(t for e in entries.values() for t in e.tag_versions))
        current = self._tag_versions(tags) if tags else {}
        return {k: e.value for k, e in entries.items() if e.is_current(current)}

    def _store(self, key: str, payload: bytes, ttl: int, tags: tuple[str, ...]) -> None:
        versions: dict[str, str] = {}
        if tags:
            current = self._tag_versions(list(tags))
            for tag in tags:
                version = current.get(tag)
                if version is None:
                    version = self._create_tag_version(tag)
                versions[tag] = version
        self._client.set(self._entry_key(key), encode_entry(payload, versions), ttl)

    def _tag_versions(self, tags: list[str]) -> dict[str, str | None]:
        raws = self._client.get_many([self._tag_key(t) for t in tags])
        found = {self._tag_key(t): t for t in tags}
        versions: dict[str, str | None] = dict.fromkeys(tags)
        for stored_key, raw in raws.items():
            versions[found[stored_key]] = raw.decode("utf-8", "replace")
        return versions

    def _create_tag_version(self, tag: str) -> str:
        fresh = new_tag_version()
        if self._client.add(self._tag_key(tag), fresh.encode("ascii"), MAX_TTL_SECONDS):
            return fresh
        # Another writer created it first: use theirs. If it is already gone again (an
        # invalidation in between), ours is as good as any: the entry will just miss.
        return self._tag_versions([tag]).get(tag) or fresh

    def _increment(self, memcached_key: str, amount: int, ttl: int) -> int:
        for _ in range(_INCR_ATTEMPTS):
            value = self._client.incr(memcached_key, amount)
            if value is not None:
                return value
            if self._client.add(memcached_key, str(amount).encode("ascii"), ttl):
                return amount
        raise TimeoutError("the counter kept vanishing between incr and add")

    def _entry_key(self, key: str) -> str:
        return memcached_key(self._prefix, "k:", key)

    def _tag_key(self, tag: str) -> str:
        return memcached_key(self._prefix, "t:", tag)

"""A cache in process memory."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.platform.cache import MAX_TTL_SECONDS, Cache, JsonInput, JsonValue
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
    parse_counter,
)
from core.shared.clock import Clock

_TAG_LIFETIME = timedelta(seconds=MAX_TTL_SECONDS)


@dataclass(slots=True)
class _Slot:
    raw: bytes  # entry bytes (see core.platform.cache_codec) or a tag's version
    deadline: datetime | None  # gone from this instant on; None: no expiry


class InMemoryCache(Cache):
    """A `Cache` in a dict, for tests and single-process deployments.

    Contract (from `Cache`), with the injected clock standing in for the server's:
    - Entries are stored as the same bytes the Redis and Memcached adapters store (one
      codec), so this adapter accepts, refuses and round-trips values exactly as they
      do, and every `get` decodes a fresh copy.
    - An entry is gone from `now + ttl_seconds` on, to the microsecond.
    - At most `max_entries` entries and `max_entries` tag versions are kept; beyond
      that the least recently used go first. Evicting a tag version makes the entries
      carrying the tag miss, never serve stale data. Expired entries are dropped when
      touched or evicted, so memory stays bounded without a sweeper.
    - `ping` never fails. Every call runs to completion under a lock, without awaiting,
      so calls are atomic with respect to other tasks and threads. No prefix: each
      instance is its own namespace. Contents die with the process.
    """

    def __init__(self, clock: Clock, *, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Slot] = OrderedDict()  # least recently used first
        self._tags: OrderedDict[str, _Slot] = OrderedDict()

    async def get(self, key: str) -> JsonValue:
        check_key(key)
        with self._lock:
            entry = self._read(key, self._clock.now())
        return entry.value if entry is not None else None

    async def get_many(self, keys: Iterable[str]) -> dict[str, JsonValue]:
        wanted = check_keys(keys)
        found: dict[str, JsonValue] = {}
        with self._lock:
            now = self._clock.now()
            for key in dict.fromkeys(wanted):
                entry = self._read(key, now)
                if entry is not None:
                    found[key] = entry.value
        return found

    async def set(
        self, key: str, value: JsonInput, ttl_seconds: int, *, tags: Iterable[str] = ()
    ) -> None:
        check_key(key)
        ttl = check_ttl(ttl_seconds)
        tag_list = check_tags(tags)
        payload = encode_value(value)  # refuses bad values before anything changes
        with self._lock:
            now = self._clock.now()
            deadline = now + timedelta(seconds=ttl)
            versions = {tag: self._tag_version(tag, now) for tag in tag_list}
            self._put(self._entries, key, _Slot(encode_entry(payload, versions), deadline))

    async def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._entries.pop(key, None)

    async def incr(self, key: str, amount: int = 1, ttl_seconds: int | None = None) -> int:
        check_key(key)
        check_amount(amount)
        ttl = None if ttl_seconds is None else check_ttl(ttl_seconds)
        with self._lock:
            now = self._clock.now()
            slot = _live(self._entries, key, now)
            if slot is None:
                deadline = now + timedelta(seconds=ttl) if ttl is not None else None
                self._put(self._entries, key, _Slot(str(amount).encode("ascii"), deadline))
                return amount
            current = parse_counter(slot.raw)
            if current is None:
                raise ValueError("the entry under this key is not a counter")
            slot.raw = str(current + amount).encode("ascii")  # the TTL stays as created
            self._entries.move_to_end(key)
            return current + amount

    async def invalidate_tag(self, tag: str) -> None:
        check_key(tag, what="tag")
        with self._lock:
            self._tags.pop(tag, None)

    async def ping(self) -> None:
        return None

    def _read(self, key: str, now: datetime) -> StoredEntry | None:
        slot = _live(self._entries, key, now)
        entry = decode_entry(slot.raw) if slot is not None else None
        if entry is None:
            return None
        current: dict[str, str | None] = {}
        for tag in entry.tag_versions:
            tag_slot = _live(self._tags, tag, now)
            current[tag] = tag_slot.raw.decode("utf-8") if tag_slot is not None else None
        if not entry.is_current(current):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def _tag_version(self, tag: str, now: datetime) -> str:
        slot = _live(self._tags, tag, now)
        if slot is None:
            # Bounded like Memcached's tag keys: a version that lapses only makes the
            # entries stamped with it miss.
            slot = _Slot(new_tag_version().encode("ascii"), now + _TAG_LIFETIME)
        self._put(self._tags, tag, slot)
        return slot.raw.decode("ascii")

    def _put(self, table: OrderedDict[str, _Slot], name: str, slot: _Slot) -> None:
        table[name] = slot
        table.move_to_end(name)
        while len(table) > self._max_entries:
            table.popitem(last=False)


def _live(table: OrderedDict[str, _Slot], name: str, now: datetime) -> _Slot | None:
    slot = table.get(name)
    if slot is not None and slot.deadline is not None and now >= slot.deadline:
        del table[name]
        return None
    return slot

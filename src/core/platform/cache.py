"""The cache port: short-lived JSON values shared by every process, and its limits.

What a cache holds is always a copy of data that lives elsewhere (or a counter whose loss
is harmless), so every adapter may lose any entry at any time; callers must work on a
miss. `core.platform.cache_aside` builds read-through caching on top of this port.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, TypeAlias

# What comes back from the cache: exactly what `json.loads` produces.
JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
# What may go in: the same shapes, read-only and covariant, so a `dict[str, int]` or a
# tuple is accepted without casts. Tuples come back as lists.
JsonInput: TypeAlias = (
    "bool | int | float | str | Sequence[JsonInput] | Mapping[str, JsonInput] | None"
)

DEPENDENCY = "cache"

MAX_KEY_BYTES = 512  # UTF-8 bytes of a caller's key (before the adapter's prefix)
MAX_TAG_BYTES = 128
MAX_TAGS = 16  # tags on one entry
# Encoded JSON. Memcached's default item limit is 1 MiB including key and overhead; half
# of it leaves room for tag versions and keeps one entry from crowding out the rest.
MAX_VALUE_BYTES = 512 * 1024
MAX_DEPTH = 64  # nesting of lists and objects
# Memcached reads a TTL above 30 days as an absolute Unix time; no adapter goes past it.
MAX_TTL_SECONDS = 30 * 24 * 3600
MAX_INCREMENT = 2**32


class CacheValueTooLargeError(ValueError):
    """A value whose JSON encoding is larger than `MAX_VALUE_BYTES`.

    A `ValueError` like every other refused input, but its own class: a value that grew
    too big at run time is not a bug in the caller, so `CacheAside` serves it uncached
    instead of failing the request.
    """


class Cache(Protocol):
    """A shared key-value cache of JSON values with TTLs, tags and counters.

    Contract:
    - Keys are non-empty strings of at most `MAX_KEY_BYTES` UTF-8 bytes; any characters
      are allowed (adapters escape or hash them for their server). Each adapter confines
      its keys to its own `key_prefix`, so two caches with different prefixes on one
      server never see each other's entries.
    - Values are JSON, never pickle: what `get` returns is what
      `json.loads(json.dumps(value))` gives (tuples come back as lists, enums as their
      values). Non-finite floats, non-string object keys, nesting deeper than `MAX_DEPTH`
      and anything `json` cannot encode raise `ValueError`; an encoding larger than
      `MAX_VALUE_BYTES` raises `CacheValueTooLargeError` (a `ValueError`). Bad keys,
      tags, TTLs and amounts raise `ValueError` too, always before any I/O, so nothing
      is written.
    - `set` stores a value for `ttl_seconds` (1 to `MAX_TTL_SECONDS`), replacing any
      previous entry and its tags. `get` returns the value or None when there is none;
      a stored JSON null also reads as None, so None cannot be told apart from a miss.
      An entry is never returned after its TTL, but any entry may vanish earlier
      (eviction; Memcached counts TTLs in whole seconds, so it may expire an entry up to
      one second early). Returned values are fresh copies.
    - `get_many` returns a dict of the keys that hit (a stored null maps to None);
      missing, expired and invalidated keys are absent. Duplicate keys are fine.
    - `delete` removes an entry; deleting a missing key is not an error (idempotent).
    - Tags: `set(..., tags=...)` attaches up to `MAX_TAGS` tags (strings of at most
      `MAX_TAG_BYTES` bytes). `invalidate_tag(tag)` makes every entry carrying the tag
      miss from then on, in O(1) on every backend (entries are stamped with the tag's
      current version; invalidation replaces the version). An entry written concurrently
      with an invalidation of one of its tags is never served as valid afterwards with
      stale data: it either misses or was written after the invalidation. Invalidating a
      tag nobody uses does nothing. Entries without tags are unaffected.
    - `incr` adds `amount` (1 to `MAX_INCREMENT`) to an integer counter atomically and
      returns the new value; a missing counter is created at `amount`, expiring after
      `ttl_seconds` (None: no expiry, though it may still be evicted). The TTL is set
      only on creation; later increments do not extend it. `get` reads a counter as an
      int. Incrementing an entry that does not hold a non-negative integer (a string, a
      float, a tagged entry) raises `ValueError`. Counters must stay below 2**63.
    - `ping` checks that the backend answers.
    - Every call is atomic on its own; none is transactional with anything else.
    Backend failures and timeouts raise `UnavailableError(dependency="cache")` within
    the client's timeouts, never a driver's exception.
    """

    @abstractmethod
    async def get(self, key: str) -> JsonValue: ...

    @abstractmethod
    async def get_many(self, keys: Iterable[str]) -> dict[str, JsonValue]: ...

    @abstractmethod
    async def set(
        self, key: str, value: JsonInput, ttl_seconds: int, *, tags: Iterable[str] = ()
    ) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    @abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl_seconds: int | None = None) -> int: ...

    @abstractmethod
    async def invalidate_tag(self, tag: str) -> None: ...

    @abstractmethod
    async def ping(self) -> None: ...

"""Cache entries built from data that changes elsewhere, forgotten by version.

An entry is stored with the current values of the version keys of what it was built
from (the catalog's, a user's); `bump` gives a version key a new value, so every entry
built under the old one misses from then on, in every process sharing the cache. One
`get_many` reads an entry and its versions together: a warm read is one round trip.

As with the user cache (`core.identity.user_cache`): versions are read before the data
is loaded, so a load racing a change is stored under the old version and never served;
a missing version is created before loading; a cache that is down is skipped (reads go
to the source, bumps log and return) and the TTL bounds what an outage can leave stale.
Every read is reported as a hit or a miss (`Telemetry.cache_request`, under the name the
owner gives: a cache that is down answers a miss).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from core.platform.cache import MAX_TTL_SECONDS, Cache, JsonInput, JsonValue
from core.platform.cache_codec import check_ttl
from core.platform.telemetry import Telemetry
from core.shared.errors import UnavailableError

logger = logging.getLogger(__name__)

_VERSION_BYTES = 9


@dataclass(frozen=True, slots=True)
class CachedRead:
    """`value` on a hit; on a miss `versions` to store the loaded value under (None: the
    cache is down, store nothing)."""

    value: JsonValue = None
    hit: bool = False
    versions: tuple[str, ...] | None = None


class VersionedCache:
    """Entries under `key`, valid while the versions they carry are current; `name`
    stands for them in the telemetry."""

    def __init__(self, cache: Cache, ttl_seconds: int, telemetry: Telemetry, name: str) -> None:
        self._cache = cache
        self._telemetry = telemetry
        self._name = name
        self._ttl = check_ttl(ttl_seconds)
        # A version outlives the entries stamped with it; if it goes first they miss.
        self._version_ttl = min(MAX_TTL_SECONDS, 4 * self._ttl)

    async def read(self, key: str, version_keys: Sequence[str]) -> CachedRead:
        answer = await self._read(key, version_keys)
        self._telemetry.cache_request(self._name, answer.hit)
        return answer

    async def _read(self, key: str, version_keys: Sequence[str]) -> CachedRead:
        try:
            found = await self._cache.get_many((key, *version_keys))
        except UnavailableError:
            logger.warning("cache unavailable; read from the source", extra={"key": key})
            return CachedRead()
        versions = [found.get(name) for name in version_keys]
        if all(isinstance(v, str) for v in versions):
            current = tuple(str(v) for v in versions)
            entry = found.get(key)
            if isinstance(entry, dict) and entry.get("versions") == list(current):
                return CachedRead(value=entry.get("value"), hit=True)
            return CachedRead(versions=current)
        fresh = []
        for name, version in zip(version_keys, versions, strict=True):
            if isinstance(version, str):
                fresh.append(version)
                continue
            # Made before loading, so a change committed after the load replaces it.
            new = _new_version()
            if not await self._write(name, new, self._version_ttl):
                return CachedRead()
            fresh.append(new)
        return CachedRead(versions=tuple(fresh))

    async def store(self, key: str, value: JsonInput, versions: tuple[str, ...]) -> None:
        await self._write(key, {"versions": list(versions), "value": value}, self._ttl)

    async def bump(self, version_key: str) -> None:
        """Every entry built under the current version misses from now on. Never raises
        for a cache that is down (the change that calls it has committed)."""
        if not await self._write(version_key, _new_version(), self._version_ttl):
            logger.warning(
                "cache unavailable; entries may be served stale until they expire",
                extra={"version_key": version_key, "ttl_seconds": self._ttl},
            )

    async def _write(self, key: str, value: JsonInput, ttl_seconds: int) -> bool:
        try:
            await self._cache.set(key, value, ttl_seconds)
        except UnavailableError:
            return False
        return True


def _new_version() -> str:
    return secrets.token_urlsafe(_VERSION_BYTES)

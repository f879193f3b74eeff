"""The bench's own corner of the shared Postgres and Redis, and its cleanup.

- Postgres: `BenchDatabase` creates a fresh database (`portico_bench_<run id>`) on the
  server of `--database-url` (connecting to the database that URL names, `postgres` by
  default) and drops it afterwards; nothing else on the server is touched.
- Redis: every key the bench makes (Portico's sessions, cache and rate limits through the
  `*_KEY_PREFIX` settings, the ceiling's session) starts with `bench:<run id>:`;
  `delete_keys` removes those keys, in every logical database, and nothing else.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_MAX_REDIS_DATABASES = 16


def plain_postgres_url(url: str) -> str:
    """`postgresql+asyncpg://...` (SQLAlchemy's spelling) as asyncpg's `postgresql://...`."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {parts.scheme}://...")
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_database(url: str, name: str) -> str:
    """`url` with its database (path) replaced by `name`."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@dataclass(frozen=True)
class BenchDatabase:
    """A database of the bench's own on the server of `server_url`."""

    server_url: str
    name: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"unsafe database name {self.name!r}")

    @property
    def dsn(self) -> str:
        """asyncpg's URL of the bench database."""
        return with_database(plain_postgres_url(self.server_url), self.name)

    @property
    def sqlalchemy_url(self) -> str:
        """Portico's `PORTICO_DATABASE__URL` for the bench database."""
        return "postgresql+asyncpg" + self.dsn.removeprefix("postgresql")

    def create(self) -> None:
        asyncio.run(self._admin(f'CREATE DATABASE "{self.name}"'))

    def drop(self) -> None:
        # FORCE ends connections to this database only (a server that failed to stop).
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    async def _admin(self, statement: str) -> None:
        conn = await asyncpg.connect(plain_postgres_url(self.server_url), timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()


def set_key(url: str, key: str, value: str, ttl_seconds: int) -> None:
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.set(key, value, ex=ttl_seconds)
    finally:
        client.close()


def count_keys(url: str, prefix: str) -> int:
    return sum(len(keys) for _, keys in _keys_by_database(url, prefix))


def delete_keys(url: str, prefix: str) -> int:
    """Delete every key starting with `prefix` in each logical database; how many went."""
    removed = 0
    for db, keys in _keys_by_database(url, prefix):
        client = redis.Redis.from_url(url, db=db, socket_timeout=5, socket_connect_timeout=5)
        try:
            for start in range(0, len(keys), 500):
                removed += int(client.delete(*keys[start : start + 500]))
        finally:
            client.close()
    return removed


def _keys_by_database(url: str, prefix: str) -> list[tuple[int, list[bytes]]]:
    if not prefix or any(c in prefix for c in "*?[]\\"):
        raise ValueError(f"unsafe key prefix {prefix!r}")
    found = []
    for db in range(_MAX_REDIS_DATABASES):
        client = redis.Redis.from_url(url, db=db, socket_timeout=5, socket_connect_timeout=5)
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
        except redis.ResponseError:
            break  # fewer logical databases on this server (or a cluster: database 0 only)
        finally:
            client.close()
        if keys:
            found.append((db, keys))
    return found

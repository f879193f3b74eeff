"""Building Memcached clients, and turning Memcached failures into core errors.

pymemcache is synchronous: every method of `MemcachedClient` blocks, and the adapters
call them only through a `ThreadOffload`, never on the event loop. `ThreadOffload` runs
them on the event loop's default executor, which has `cpu_count + 4` threads unless the
composition root installs a larger one: calls beyond that queue for a thread (and, with
a hung server, behind other calls' timeouts), whatever the offload's own bound.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager

from pymemcache.client.base import PooledClient  # type: ignore[import-untyped]
from pymemcache.client.rendezvous import RendezvousHash  # type: ignore[import-untyped]
from pymemcache.exceptions import (  # type: ignore[import-untyped]
    MemcacheClientError,
    MemcacheError,
)

from core.shared.errors import UnavailableError


class NotACounterError(ValueError):
    """`incr` on an entry that does not hold decimal digits."""


class MemcachedClient:
    """A thread-safe client for one or more Memcached servers.

    - One `PooledClient` (a pool of at most `max_pool_size` connections) per server;
      with several servers a key lives on the server rendezvous hashing picks for it.
      A server that is down makes the calls for its keys fail: keys are never moved to
      another server (which would silently reset rate-limit counters and serve stale
      entries once the server came back). pymemcache's `HashClient` is not used for
      that reason, and because it answers calls to a recently failed server with
      defaults (None, False) instead of errors and keeps its failure bookkeeping in
      plain dicts that several threads would race on.
    - `connect_timeout` bounds opening a connection and also waiting for a free one
      when a server's pool is exhausted; `timeout` bounds every read and write. A
      connection that failed is closed and replaced, never reused.
    - Values are bytes in and bytes out (no pickling: pymemcache gets no serde).
    - Every method blocks: call them in a thread (`ThreadOffload`). They raise
      pymemcache errors, `OSError` (timeouts, refused connections) or `TimeoutError`
      (no free connection in time); wrap calls in `translate_errors`.
    """

    def __init__(
        self,
        servers: Sequence[tuple[str, int]],
        *,
        connect_timeout: float,
        timeout: float,
        max_pool_size: int,
        pool_idle_timeout: int,
    ) -> None:
        if not servers:
            raise ValueError("at least one Memcached server is needed")
        self.connect_timeout = connect_timeout
        self.max_pool_size = max_pool_size
        self._servers: dict[str, PooledClient] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        for host, port in servers:
            name = f"{host}:{port}"
            self._servers[name] = PooledClient(
                (host, port),
                connect_timeout=connect_timeout,
                timeout=timeout,
                no_delay=True,
                max_pool_size=max_pool_size,
                pool_idle_timeout=pool_idle_timeout,
                # Replies are needed: `add` must say whether it stored, errors must show.
                default_noreply=False,
            )
            # pymemcache's pool raises at once when exhausted; waiting for a slot first
            # turns that into a bounded wait, as Redis' BlockingConnectionPool does.
            self._slots[name] = threading.BoundedSemaphore(max_pool_size)
        self._ring = RendezvousHash(nodes=list(self._servers))

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        batches: dict[str, list[str]] = {}
        for key in keys:
            batches.setdefault(self._server_of(key), []).append(key)
        found: dict[str, bytes] = {}
        for name, batch in batches.items():
            with self._slot(name):
                found.update(self._servers[name].get_many(batch))
        return found

    def set(self, key: str, value: bytes, expire: int) -> None:
        name = self._server_of(key)
        with self._slot(name):
            self._servers[name].set(key, value, expire=expire, noreply=False)

    def add(self, key: str, value: bytes, expire: int) -> bool:
        """Store only if the key is absent; True if this call stored it."""
        name = self._server_of(key)
        with self._slot(name):
            return bool(self._servers[name].add(key, value, expire=expire, noreply=False))

    def incr(self, key: str, amount: int) -> int | None:
        """The new value, or None when the key is absent (nothing is created)."""
        return self._count("incr", key, amount)

    def decr(self, key: str, amount: int) -> int | None:
        """The new value (Memcached stops at 0), or None when the key is absent."""
        return self._count("decr", key, amount)

    def delete(self, key: str) -> None:
        name = self._server_of(key)
        with self._slot(name):
            self._servers[name].delete(key, noreply=False)

    def ping(self) -> None:
        """Ask every server for its version; raises if any does not answer."""
        for name, server in self._servers.items():
            with self._slot(name):
                server.version()

    def close(self) -> None:
        for server in self._servers.values():
            server.close()

    def _count(self, command: str, key: str, amount: int) -> int | None:
        name = self._server_of(key)
        with self._slot(name):
            try:
                value = getattr(self._servers[name], command)(key, amount, noreply=False)
            except MemcacheClientError as exc:
                if "non-numeric" in str(exc):
                    raise NotACounterError("the entry under this key is not a counter") from exc
                raise
        return None if value is None else int(value)

    def _server_of(self, key: str) -> str:
        if len(self._servers) == 1:
            return next(iter(self._servers))
        server: str = self._ring.get_node(key)
        return server

    @contextmanager
    def _slot(self, name: str) -> Iterator[None]:
        slot = self._slots[name]
        if not slot.acquire(timeout=self.connect_timeout):
            raise TimeoutError("no free Memcached connection in time")
        try:
            yield
        finally:
            slot.release()


def create_memcached(
    servers: Sequence[str] | str,
    *,
    connect_timeout: float = 1.0,
    timeout: float = 1.0,
    max_pool_size: int = 32,
    pool_idle_timeout: int = 60,
) -> MemcachedClient:
    """A `MemcachedClient` for `"host:port"` servers (a list, or one comma-separated string).

    `[v6addr]:port` works for IPv6; the port defaults to 11211. Timeouts must be
    positive: every connect, read and write is bounded. Give the pool at least as many
    connections as the `ThreadOffload` bounds concurrent calls to (the adapters check
    this). Idle connections are closed after `pool_idle_timeout` seconds. Close it
    with `client.close()`.
    """
    if connect_timeout <= 0 or timeout <= 0:
        raise ValueError("Memcached timeouts must be positive")
    if max_pool_size < 1:
        raise ValueError("max_pool_size must be at least 1")
    names = servers.split(",") if isinstance(servers, str) else list(servers)
    parsed = [parse_server(name) for name in names if name.strip()]
    return MemcachedClient(
        parsed,
        connect_timeout=connect_timeout,
        timeout=timeout,
        max_pool_size=max_pool_size,
        pool_idle_timeout=pool_idle_timeout,
    )


def parse_server(spec: str) -> tuple[str, int]:
    """`"host:port"`, `"host"` or `"[::1]:port"` -> (host, port)."""
    spec = spec.strip()
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = rest.removeprefix(":") or "11211"
    elif spec.count(":") == 1:
        host, port = spec.split(":")
    else:
        host, port = spec, "11211"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a Memcached server address: {spec!r}")
    return host, int(port)


@asynccontextmanager
async def translate_errors(dependency: str) -> AsyncIterator[None]:
    """Re-raise Memcached driver and socket failures as `UnavailableError(dependency=...)`.

    `ValueError`s (refused input, `NotACounterError`) pass through unchanged. The
    original exception is chained as `__cause__` for logs; the detail names no host or
    key.
    """
    try:
        yield
    except ValueError:
        raise
    except (MemcacheError, OSError) as exc:
        # OSError covers refused connections, socket timeouts and our own TimeoutError
        # for a pool that stayed exhausted.
        raise UnavailableError("Memcached is unavailable.", dependency=dependency) from exc

"""RedisSessionStore when Redis dies or hangs: UnavailableError, quickly, and recovery.

Each test starts its own `redis-server` on a free port and stops it by PID; the shared
Redis is never touched.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from adapters.redis.client import create_redis
from adapters.redis.sessions import RedisSessionStore
from adapters.system.clock import SystemClock
from core.identity.model import BrowserSession
from core.shared.errors import UnavailableError
from core.shared.hashing import fingerprint
from tests.private_servers import PrivateServer, private_server

pytestmark = pytest.mark.integration

TIMEOUT = 0.5  # connect and socket timeout of the client under test
# How fast a call fails is the point of these tests, so they bound it, with margins a
# loaded 2-core machine passes: a refused connection (milliseconds, plus at most one
# backoff of 0.1 s) within one timeout; a hung Redis within two timeouts, which one
# timeout plus scheduling stays under and a retried timeout does not.
KILLED_WITHIN = TIMEOUT
HUNG_WITHIN = 2 * TIMEOUT


@pytest.fixture
def redis_server() -> Iterator[PrivateServer]:
    """A throwaway redis-server of this test alone, stopped by PID afterwards."""
    with private_server("redis") as server:
        yield server


@pytest.fixture
async def client(redis_server: PrivateServer) -> AsyncIterator[aioredis.Redis]:
    redis = create_redis(
        redis_server.redis_url(0),
        connect_timeout=TIMEOUT,
        socket_timeout=TIMEOUT,
    )
    yield redis
    await redis.aclose()


def _session(user_id: int = 7) -> BrowserSession:
    now = SystemClock().now()
    return BrowserSession(
        token_hash=fingerprint(f"token-{time.monotonic_ns()}"),
        user_id=user_id,
        csrf_token="csrf",
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=1),
        idle_timeout_seconds=600,
    )


def _every_call(
    store: RedisSessionStore, user_id: int
) -> dict[str, Callable[[], Awaitable[object]]]:
    now = SystemClock().now()
    known = fingerprint("known")
    return {
        "create": lambda: store.create(_session(user_id), now),
        "get": lambda: store.get(known),
        "touch": lambda: store.touch(known, now, 60),
        "delete": lambda: store.delete(known),
        "delete_for_user": lambda: store.delete_for_user(user_id, 1),
        "delete_all_for_user": lambda: store.delete_all_for_user(user_id),
        "list_for_user": lambda: store.list_for_user(user_id),
        "ping": store.ping,
    }


async def _assert_every_call_unavailable(
    store: RedisSessionStore, *, user_id: int, within: float
) -> None:
    for name, call in _every_call(store, user_id).items():
        started = time.monotonic()
        with pytest.raises(UnavailableError) as caught:
            await call()
        elapsed = time.monotonic() - started
        assert caught.value.dependency == "redis", name
        assert elapsed < within, f"{name} took {elapsed:.2f}s"


async def test_a_killed_redis_makes_every_call_unavailable_quickly(
    redis_server: PrivateServer, client: aioredis.Redis, key_prefix: str
) -> None:
    store = RedisSessionStore(client, key_prefix=key_prefix)
    created = await store.create(_session(), SystemClock().now())
    assert await store.get(created.token_hash) == created  # pooled connections are warm

    redis_server.kill()

    # Refused connections fail at once; one retry with a short backoff is all it costs.
    await _assert_every_call_unavailable(store, user_id=7, within=KILLED_WITHIN)


async def test_a_hung_redis_times_out_as_unavailable_and_recovers(
    redis_server: PrivateServer, client: aioredis.Redis, key_prefix: str
) -> None:
    store = RedisSessionStore(client, key_prefix=key_prefix)
    created = await store.create(_session(), SystemClock().now())

    redis_server.freeze()  # the kernel still accepts connections; no reply comes
    try:
        # One socket timeout per call: timeouts are not retried, or a stalled Redis would
        # hold every request for a multiple of it. Another user's sessions, because
        # commands that timed out may still be applied when Redis resumes.
        await _assert_every_call_unavailable(store, user_id=99, within=HUNG_WITHIN)
    finally:
        redis_server.thaw()

    await store.ping()
    assert await store.get(created.token_hash) == created
    assert await store.delete_all_for_user(created.user_id) == 1

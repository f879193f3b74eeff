"""InMemorySessionStore specifics beyond the shared contract: memory stays bounded."""

from __future__ import annotations

from datetime import timedelta

from adapters.memory.clock import ManualClock
from adapters.memory.sessions import InMemorySessionStore
from core.identity.model import BrowserSession
from core.shared.hashing import fingerprint


def _session(clock: ManualClock, n: int, *, user_id: int = 1, idle: int = 60) -> BrowserSession:
    now = clock.now()
    return BrowserSession(
        token_hash=fingerprint(f"token-{n}"),
        user_id=user_id,
        csrf_token="csrf",
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=12),
        idle_timeout_seconds=idle,
    )


def _footprint(store: InMemorySessionStore) -> int:
    # White-box on purpose: the property under test is what the store keeps in memory.
    return sum(
        len(part) for part in (store._entries, store._by_id, store._by_user, store._deadlines)
    )


async def test_expired_sessions_are_purged_without_anyone_asking_for_them() -> None:
    clock = ManualClock()
    store = InMemorySessionStore(clock)
    for n in range(500):
        await store.create(_session(clock, n, user_id=n % 7), clock.now())
    assert _footprint(store) > 500

    clock.advance(61)
    survivor = await store.create(_session(clock, 10_000), clock.now())

    assert await store.get(survivor.token_hash) == survivor
    assert len(store._entries) == 1
    assert _footprint(store) == 4  # one entry, its id, its user, its deadline


async def test_touch_keeps_a_session_alive_across_purges() -> None:
    clock = ManualClock()
    store = InMemorySessionStore(clock)
    session = await store.create(_session(clock, 1), clock.now())
    for _ in range(10):
        clock.advance(50)
        await store.touch(session.token_hash, clock.now(), 60)
        await store.get(fingerprint("unrelated"))  # a call that purges
    assert await store.get(session.token_hash) is not None
    # Stale heap pairs from earlier touches are dropped once their deadline passes.
    assert len(store._deadlines) <= 2

    clock.advance(61)
    assert await store.get(session.token_hash) is None
    assert _footprint(store) == 0


async def test_ids_are_never_reused() -> None:
    clock = ManualClock()
    store = InMemorySessionStore(clock)
    first = await store.create(_session(clock, 1), clock.now())
    await store.delete(first.token_hash)
    second = await store.create(_session(clock, 2), clock.now())
    assert (first.id, second.id) == (1, 2)

"""The PasswordHasher contract, run against every adapter of the port.

`make(strength)` builds a hasher of the adapter under test; a higher strength means
stronger parameters (argon2 iterations, the in-memory version tag). The argon2 runs use
cheap parameters (`allow_weak=True`) except where the real cost is the point.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from adapters.memory.security import InMemoryPasswordHasher
from adapters.security.argon2 import Argon2PasswordHasher
from core.identity.ports import PasswordHasher

PASSWORD = "correct horse battery staple"

Make = Callable[..., PasswordHasher]


def _argon2(strength: int = 1, max_concurrency: int = 2) -> PasswordHasher:
    return Argon2PasswordHasher(
        time_cost=strength, memory_cost_kib=256, max_concurrency=max_concurrency, allow_weak=True
    )


def _memory(strength: int = 1, max_concurrency: int = 2) -> PasswordHasher:
    return InMemoryPasswordHasher(version=strength, max_concurrency=max_concurrency)


@pytest.fixture(params=["argon2", "memory"])
def make(request: pytest.FixtureRequest) -> Make:
    return _argon2 if request.param == "argon2" else _memory


@pytest.fixture(params=["argon2", "memory"])
async def foreign_hash(request: pytest.FixtureRequest) -> str:
    """A well-formed hash of each adapter; every hasher meets its own and the other's."""
    hasher = _argon2() if request.param == "argon2" else _memory()
    return await hasher.hash(PASSWORD + "-elsewhere")


async def test_each_hash_has_its_own_salt(make: Make) -> None:
    hasher = make()
    first, second = await hasher.hash(PASSWORD), await hasher.hash(PASSWORD)
    assert first != second
    assert PASSWORD not in first
    assert await hasher.verify(first, PASSWORD) and await hasher.verify(second, PASSWORD)


async def test_verify_accepts_only_the_right_password(make: Make) -> None:
    hasher = make()
    stored = await hasher.hash(PASSWORD)
    assert await hasher.verify(stored, PASSWORD) is True
    for wrong in (PASSWORD + "!", PASSWORD.upper(), PASSWORD[:-1], "", " " + PASSWORD):
        assert await hasher.verify(stored, wrong) is False


async def test_unicode_passwords_round_trip(make: Make) -> None:
    hasher = make()
    password = "pässwörd mit Ümlaut 🙂 ключ"
    stored = await hasher.hash(password)
    assert await hasher.verify(stored, password) is True
    assert await hasher.verify(stored, password.replace("🙂", "🙃")) is False


async def test_verify_is_false_for_malformed_or_foreign_hashes(
    make: Make, foreign_hash: str
) -> None:
    hasher = make()
    real = await hasher.hash(PASSWORD)
    malformed = [
        "",
        "not a hash",
        "$",
        real[:-6],
        real + "$extra",
        real.replace("$", "$$", 1),
        "$argon2id$v=19$m=256,t=1,p=1$c2FsdA$",
        "$argon2id$v=19$m=abc,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
        "$memory-pbkdf2-sha256$v=1$AAAA$BBBB",
        "$memory-pbkdf2-sha256$v=x$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$é",
        foreign_hash,
    ]
    for candidate in malformed:
        assert await hasher.verify(candidate, PASSWORD) is False, candidate


async def test_needs_rehash_after_parameters_change(make: Make) -> None:
    old, new = make(1), make(2)
    stored = await old.hash(PASSWORD)

    assert old.needs_rehash(stored) is False
    assert new.needs_rehash(stored) is True
    assert await new.verify(stored, PASSWORD) is True  # old hashes still log in

    upgraded = await new.hash(PASSWORD)
    assert new.needs_rehash(upgraded) is False
    assert new.needs_rehash("not a hash") is True


async def test_long_passwords_are_not_truncated(make: Make) -> None:
    hasher = make()
    first = "p" * 1999 + "a"
    second = "p" * 1999 + "b"
    stored = await hasher.hash(first)
    assert await hasher.verify(stored, first) is True
    assert await hasher.verify(stored, second) is False


@dataclass
class ThreadSpy:
    """Wraps thread-pool submissions to see what runs in threads and how much at once."""

    delay: float
    loop_thread: int = field(default_factory=threading.get_ident)
    calls: int = 0
    in_flight: int = 0
    peak: int = 0
    on_loop_thread: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = ThreadPoolExecutor.submit

        def spy(executor: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any) -> Any:
            def observed() -> Any:
                with self._lock:
                    self.calls += 1
                    self.in_flight += 1
                    self.peak = max(self.peak, self.in_flight)
                    self.on_loop_thread += threading.get_ident() == self.loop_thread
                try:
                    time.sleep(self.delay)  # widens the window in which overlaps show
                    return fn(*args)
                finally:
                    with self._lock:
                        self.in_flight -= 1

            return real(executor, observed)

        monkeypatch.setattr(ThreadPoolExecutor, "submit", spy)


# Ticks the loop must manage while hashes are in flight. A loop blocked by the hashing
# manages none then, however fast the machine; a free loop manages dozens even on a
# loaded one (each batch keeps a thread busy for 100 ms or more).
MIN_TICKS_WHILE_HASHING = 3


async def _ticks_while_hashing(work: asyncio.Future[Any], spy: ThreadSpy) -> int:
    """Run a ticker (2 ms sleeps) until `work` is done; count the ticks that ran while a
    hash was in flight in a thread."""
    ticks = 0
    while not work.done():
        await asyncio.sleep(0.002)
        ticks += spy.in_flight > 0
    return ticks


async def test_hashing_runs_in_threads_within_the_concurrency_bound(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    hasher = make(1, max_concurrency=2)
    stored = await hasher.hash(PASSWORD)
    spy = ThreadSpy(delay=0.03)
    spy.install(monkeypatch)

    work = asyncio.gather(
        *(hasher.hash(f"{PASSWORD}{i}") for i in range(4)),
        *(hasher.verify(stored, PASSWORD) for _ in range(4)),
    )
    ticks = await _ticks_while_hashing(work, spy)
    results = await work

    assert results[4:] == [True] * 4
    assert spy.calls == 8
    assert spy.on_loop_thread == 0
    assert spy.peak == 2  # ran in parallel, but never more than the bound
    assert ticks >= MIN_TICKS_WHILE_HASHING  # the loop went on while threads hashed


def test_a_hasher_can_serve_several_event_loops_at_once(make: Make) -> None:
    hasher = make(1, max_concurrency=1)

    async def round_trip() -> bool:
        results = await asyncio.gather(*(hasher.hash(PASSWORD) for _ in range(3)))
        return all([await hasher.verify(h, PASSWORD) for h in results])

    def in_own_loop(_: int) -> bool:
        # A semaphore shared across loops deadlocks rather than failing: bound the wait.
        return asyncio.run(asyncio.wait_for(round_trip(), timeout=10))

    # Each thread runs its own event loop, so pytest's loop is left alone.
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(in_own_loop, range(3)))
    assert outcomes == [True, True, True]


# --- Argon2 specifics -------------------------------------------------------------------


async def test_argon2_defaults_are_argon2id_at_the_asvs_floor() -> None:
    hasher = Argon2PasswordHasher()
    stored = await hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await hasher.verify(stored, PASSWORD) is True
    assert hasher.needs_rehash(stored) is False


def test_argon2_refuses_parameters_below_the_asvs_floor() -> None:
    with pytest.raises(ValueError, match="ASVS"):
        Argon2PasswordHasher(memory_cost_kib=19455)
    with pytest.raises(ValueError, match="ASVS"):
        Argon2PasswordHasher(time_cost=1)
    assert Argon2PasswordHasher(time_cost=1, memory_cost_kib=256, allow_weak=True) is not None
    with pytest.raises(ValueError):
        Argon2PasswordHasher(max_concurrency=0)


async def test_argon2_real_cost_does_not_block_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ~170 ms per hash here: had it run on the loop, the ticker would stall that long.
    hasher = Argon2PasswordHasher(time_cost=3, memory_cost_kib=65536, max_concurrency=2)
    spy = ThreadSpy(delay=0)  # only watches: which thread, and when a hash is in flight
    spy.install(monkeypatch)
    started = time.perf_counter()
    work = asyncio.gather(*(hasher.hash(PASSWORD) for _ in range(4)))
    ticks = await _ticks_while_hashing(work, spy)
    hashes = await work

    assert all(h.startswith("$argon2id$v=19$m=65536,t=3,p=1$") for h in hashes)
    assert time.perf_counter() - started > 0.1  # the work was real (a floor: load only adds)
    assert spy.calls == 4 and spy.on_loop_thread == 0
    assert ticks >= MIN_TICKS_WHILE_HASHING  # the loop went on while threads hashed


async def test_argon2_cancelled_callers_keep_their_slot_until_the_thread_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = _argon2(1, max_concurrency=2)
    spy = ThreadSpy(delay=0.1)
    spy.install(monkeypatch)

    abandoned = [asyncio.ensure_future(hasher.hash(PASSWORD)) for _ in range(2)]
    await asyncio.sleep(0.02)  # both threads are running now
    for task in abandoned:
        task.cancel()
    # The slots are still taken by the running threads, so this one has to wait.
    late = await hasher.hash(PASSWORD)

    assert late.startswith("$argon2id$")
    assert spy.calls == 3
    assert spy.peak == 2
    for task in abandoned:
        with pytest.raises(asyncio.CancelledError):
            await task


# --- In-memory specifics ----------------------------------------------------------------


async def test_in_memory_version_can_be_bumped_on_a_live_hasher() -> None:
    hasher = InMemoryPasswordHasher()
    old = await hasher.hash(PASSWORD)
    hasher.version += 1
    assert hasher.needs_rehash(old) is True
    assert await hasher.verify(old, PASSWORD) is True
    new = await hasher.hash(PASSWORD)
    assert new.startswith("$memory-pbkdf2-sha256$v=2$") and not hasher.needs_rehash(new)
    with pytest.raises(ValueError):
        hasher.version = 0

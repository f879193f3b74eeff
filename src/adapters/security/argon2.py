"""Password hashing with argon2id."""

from __future__ import annotations

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import VerificationError

from adapters.threads import ThreadOffload
from core.identity.ports import PasswordHasher

# OWASP ASVS 5.0 / OWASP cheat sheet floor for argon2id: 19 MiB and 2 iterations.
MIN_MEMORY_COST_KIB = 19456
MIN_TIME_COST = 2
HASH_THREAD_NICENESS = 10


class Argon2PasswordHasher(PasswordHasher):
    """argon2id (argon2-cffi) with a random 16-byte salt and a 32-byte tag.

    Contract (from `PasswordHasher`):
    - `hash` returns a PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$tag`), new
      salt each call; the whole password counts (no truncation).
    - `verify` returns False for a wrong password and for anything that is not a valid
      argon2 hash (malformed, foreign scheme); it never raises.
    - `needs_rehash` is True when the hash was made with other parameters (or is not an
      argon2id hash at all), so logins upgrade old hashes.
    - Hashing and verifying run in worker threads, at most `max_concurrency` at a time
      per event loop, so the loop keeps serving while a hash costs ~100 ms. A caller
      cancelled mid-hash gives its slot back only when the thread has finished, so the
      bound holds for the CPU and memory actually in use.
    Parameters below the ASVS floor (19456 KiB, 2 iterations) raise `ValueError` unless
    `allow_weak=True`, which exists for fast tests only.
    """

    def __init__(
        self,
        *,
        time_cost: int = MIN_TIME_COST,
        memory_cost_kib: int = MIN_MEMORY_COST_KIB,
        parallelism: int = 1,
        max_concurrency: int = 2,
        allow_weak: bool = False,
    ) -> None:
        if not allow_weak and (memory_cost_kib < MIN_MEMORY_COST_KIB or time_cost < MIN_TIME_COST):
            raise ValueError(
                f"argon2id needs at least {MIN_MEMORY_COST_KIB} KiB and {MIN_TIME_COST} "
                "iterations (ASVS); allow_weak=True is for tests only"
            )
        self._argon2 = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        # Below the event loop's priority: a stream of logins must not stall the reads
        # that need no hash.
        self._threads = ThreadOffload(max_concurrency, niceness=HASH_THREAD_NICENESS)

    async def hash(self, password: str) -> str:
        return await self._threads.run(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._threads.run(self._verify_sync, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except (ValueError, TypeError):
            return True

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerificationError, ValueError, TypeError):
            # ValueError covers InvalidHashError and non-ASCII garbage in the hash.
            return False

"""A fast password hasher for tests."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from adapters.threads import ThreadOffload
from core.identity.ports import PasswordHasher

SCHEME = "memory-pbkdf2-sha256"
MAX_VERSION = 1000  # versions are PBKDF2 iterations: bounded so verification stays cheap


class InMemoryPasswordHasher(PasswordHasher):
    """A `PasswordHasher` that costs microseconds: tests only, never for real passwords.

    Hashes look like `$memory-pbkdf2-sha256$v=<version>$<salt>$<digest>`: PBKDF2-SHA256
    with a random 16-byte salt and `version` iterations, so the version tag plays the
    role of argon2's cost parameters.

    Contract (from `PasswordHasher`): a new salt per `hash`; the whole password counts;
    `verify` is False (never raises) for a wrong password, a malformed hash or another
    scheme's hash; `needs_rehash` is True for any hash not made with the current
    `version` (bump it, even on a live instance, to exercise rehash-on-login). Work runs
    in a thread, at most `max_concurrency` at a time per event loop, like the real hasher.
    """

    def __init__(self, *, version: int = 1, max_concurrency: int = 4) -> None:
        self.version = version
        self._threads = ThreadOffload(max_concurrency)

    @property
    def version(self) -> int:
        """The parameter set new hashes are made with; other versions need a rehash."""
        return self._version

    @version.setter
    def version(self, value: int) -> None:
        if not 1 <= value <= MAX_VERSION:
            raise ValueError(f"version must be between 1 and {MAX_VERSION}")
        self._version = value

    async def hash(self, password: str) -> str:
        return await self._threads.run(self._hash_sync, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._threads.run(self._verify_sync, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        parsed = _parse(password_hash)
        return parsed is None or parsed[0] != self._version

    def _hash_sync(self, password: str) -> str:
        version = self._version  # read once: `version` may change while this thread runs
        salt = os.urandom(16)
        digest = _digest(password, salt, version)
        return f"${SCHEME}$v={version}${_b64(salt)}${_b64(digest)}"

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        parsed = _parse(password_hash)
        if parsed is None:
            return False
        version, salt, expected = parsed
        return hmac.compare_digest(_digest(password, salt, version), expected)


def _digest(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


def _parse(password_hash: str) -> tuple[int, bytes, bytes] | None:
    parts = password_hash.split("$") if isinstance(password_hash, str) else []
    if len(parts) != 5 or parts[0] or parts[1] != SCHEME or not parts[2].startswith("v="):
        return None
    try:
        version = int(parts[2][2:])
        salt = base64.b64decode(parts[3], altchars=b"-_", validate=True)
        digest = base64.b64decode(parts[4], altchars=b"-_", validate=True)
    except (ValueError, binascii.Error):
        return None
    if not 1 <= version <= MAX_VERSION or len(salt) != 16 or len(digest) != 32:
        return None
    return version, salt, digest


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")

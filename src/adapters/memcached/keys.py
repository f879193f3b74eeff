"""Turning any caller key into a legal Memcached key, without collisions.

Memcached keys are at most 250 bytes with no whitespace or control characters, and
pymemcache refuses non-ASCII keys. A key is laid out as `prefix + kind + name`:
- `name` is kept as is when it is printable ASCII without spaces or `#` and the whole
  key fits: readable keys make debugging with `memcached-tool` bearable;
- otherwise `name` becomes `#` + its SHA-256 hex digest. Readable names never contain
  `#`, so a hashed key can never equal a readable one.
"""

from __future__ import annotations

import hashlib

MAX_KEY_LENGTH = 250
MAX_PREFIX_LENGTH = 100  # leaves room for a kind and a hashed name (65 characters)


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it is legal in a Memcached key and short enough."""
    if not prefix or len(prefix) > MAX_PREFIX_LENGTH or not _is_plain(prefix):
        raise ValueError(
            f"a Memcached key prefix must be 1 to {MAX_PREFIX_LENGTH} printable ASCII "
            "characters without spaces"
        )
    return prefix


def memcached_key(prefix: str, kind: str, name: str) -> str:
    """The Memcached key for `name` in the namespace `prefix + kind` (both plain ASCII)."""
    readable = prefix + kind + name
    if len(readable) <= MAX_KEY_LENGTH and _is_plain(name) and "#" not in name:
        return readable
    return prefix + kind + "#" + hashlib.sha256(name.encode("utf-8")).hexdigest()


def _is_plain(text: str) -> bool:
    # isprintable() rules out control characters and DEL; the space is printable.
    return text.isascii() and text.isprintable() and " " not in text

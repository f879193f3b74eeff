"""Predictable tokens for reproducible tests."""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading

from core.shared.ids import TokenGenerator

MIN_TOKEN_BYTES = 16  # same floor as the real generator, so misuse fails in tests too
_COUNTER_BYTES = 8


class SequentialTokenGenerator(TokenGenerator):
    """A `TokenGenerator` whose output is a pure function of `seed` and call order.

    Contract: like the real generator, `token(nbytes)` returns `nbytes` bytes encoded as
    unpadded base64url (same length and alphabet as `secrets.token_urlsafe`) and refuses
    `nbytes` below 16. Tokens from one instance never repeat (the last 8 bytes hold a
    call counter); two instances with the same seed produce the same sequence. Not
    random: tests only. Thread-safe.
    """

    def __init__(self, seed: str = "portico") -> None:
        self._seed = seed.encode("utf-8")
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def token(self, nbytes: int = 32) -> str:
        if nbytes < MIN_TOKEN_BYTES:
            raise ValueError(f"tokens need at least {MIN_TOKEN_BYTES} random bytes")
        with self._lock:
            n = next(self._counter)
        counter = n.to_bytes(_COUNTER_BYTES, "big")
        # A seed- and counter-derived filler makes tokens look unrelated to each other,
        # so a test cannot pass by accident because two tokens share a long prefix.
        filler = hashlib.shake_256(self._seed + counter).digest(nbytes - _COUNTER_BYTES)
        return base64.urlsafe_b64encode(filler + counter).rstrip(b"=").decode("ascii")

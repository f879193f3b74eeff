"""The id/secret generator port."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol


class TokenGenerator(Protocol):
    """Makes unguessable tokens (session ids, CSRF tokens, reset tokens).

    Contract: `token(nbytes)` returns a URL-safe string carrying `nbytes` bytes of
    randomness from a cryptographically secure source; two calls never return the same
    value in practice. No I/O.
    """

    @abstractmethod
    def token(self, nbytes: int = 32) -> str: ...

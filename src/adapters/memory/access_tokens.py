"""Access tokens kept in process memory: opaque handles for the claims (tests)."""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta

from core.identity.errors import InvalidAccessTokenError
from core.identity.model import AccessTokenClaims
from core.identity.ports import AccessTokenCodec

MAX_TOKEN_LENGTH = 4096


class InMemoryAccessTokenCodec(AccessTokenCodec):
    """An `AccessTokenCodec` that signs nothing: `issue` files the claims under a random
    256-bit handle and `decode` looks the handle up (contract: the port).

    A token is valid only in the instance that issued it (another instance plays
    "another key, issuer or audience"). Issued claims stay in memory until they expire
    and another token is issued: for tests and throwaway processes, never for a
    deployment with more than one process. Thread-safe.
    """

    def __init__(self, *, leeway_seconds: float = 0) -> None:
        if leeway_seconds < 0:
            raise ValueError("leeway must not be negative")
        self._leeway = leeway_seconds
        self._issued: dict[str, AccessTokenClaims] = {}
        self._lock = threading.Lock()

    def issue(self, claims: AccessTokenClaims) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            # Forget tokens that expired before this one was issued: they can never
            # decode again, so the map stays as small as the live tokens.
            cutoff = claims.issued_at - timedelta(seconds=self._leeway)
            for handle in [h for h, c in self._issued.items() if c.expires_at < cutoff]:
                del self._issued[handle]
            self._issued[token] = claims
        return token

    def decode(self, token: str, now: datetime) -> AccessTokenClaims:
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
            raise InvalidAccessTokenError()
        with self._lock:
            claims = self._issued.get(token)
        if claims is None or not claims.is_current(now, self._leeway):
            raise InvalidAccessTokenError()
        return claims

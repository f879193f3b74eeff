"""Secure random tokens."""

from __future__ import annotations

import secrets

from core.shared.ids import TokenGenerator

MIN_TOKEN_BYTES = 16  # 128 bits: below this a token is guessable in principle (ASVS)


class SecretsTokenGenerator(TokenGenerator):
    """Tokens from the operating system's CSPRNG via `secrets.token_urlsafe`.

    Contract (from `TokenGenerator`): `token(nbytes)` carries `nbytes` random bytes,
    base64url-encoded without padding (`ceil(nbytes * 4 / 3)` characters). Raises
    `ValueError` for `nbytes` below 16, which would not be unguessable.
    """

    def token(self, nbytes: int = 32) -> str:
        if nbytes < MIN_TOKEN_BYTES:
            raise ValueError(f"tokens need at least {MIN_TOKEN_BYTES} random bytes")
        return secrets.token_urlsafe(nbytes)

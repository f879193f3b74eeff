"""Fingerprints of secrets: what stores keep instead of the secret itself."""

from __future__ import annotations

import hashlib
import hmac


def fingerprint(secret: str) -> str:
    """SHA-256 hex digest of a high-entropy secret (session ids, opaque tokens).

    Plain SHA-256 is right here: the input carries 256 random bits, so there is nothing to
    brute-force; slow hashes are for passwords.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))

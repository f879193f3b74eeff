"""The secret key: set, long enough, and generated rather than typed."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule
from entrypoints.bootstrap.settings import Settings

MIN_SECRET_KEY_LENGTH = 32
# Estimated from the key's own character frequencies (see `_estimated_bits`). A backstop
# for skewed keys only: typed passphrases score 100+ too, so the word and pattern checks do
# the real work. A random 32-character hex key (128 real bits) averages ~115 and scored no
# lower than 89 in 300,000 draws, so 64 never refuses an honest key.
MIN_SECRET_KEY_BITS = 64
MIN_SECRET_KEY_DISTINCT_CHARS = 8
# Runs this long of one character or of consecutive characters ("abcdefgh", "87654321")
# are typed, not generated: a random hex key has one with probability ~1e-7.
MAX_SECRET_KEY_RUN = 7

# Placeholder words seen in real leaked configurations. Words of six letters or more are
# looked for anywhere in the key (separators removed): a random 64-character key contains
# one of them by chance about once in a million. Shorter ones would match random keys far
# too often (`dev` is in about 1 in 500, and even as a `-dev-` token in 1 in 50,000 base64
# keys), so they count only as whole words of a single-case key ("dev-key-for-local"):
# generated base64 keys mix cases, and hex keys have no separators.
_PLACEHOLDER_WORDS = (
    "secret",
    "changeme",
    "password",
    "passwd",
    "default",
    "insecure",
    "example",
    "portico",
    "replace",
    "placeholder",
    "qwerty",
    "letmein",
    "development",
    "production",
    "staging",
    "sample",
    "django",
    "fastapi",
)
_PLACEHOLDER_TOKENS = frozenset(
    {
        "dev",
        "test",
        "demo",
        "key",
        "todo",
        "fixme",
        "admin",
        "dummy",
        "local",
        "prod",
        "pass",
        "temp",
        "foo",
        "bar",
        "xxx",
        "abc",
        "123",
        "1234",
        "12345",
    }
)

_SECRET_KEY = "secret_key"
_FIX = "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"


def _estimated_bits(key: str) -> float:
    """Shannon entropy of the key's own character frequencies, times its length.

    An over-estimate for patterned keys (those are caught by the pattern checks), a fair
    one for random keys, and zero for `"aaaa..."`.
    """
    counts = Counter(key)
    n = len(key)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) * n


def _longest_run(key: str) -> int:
    """Longest run of one repeated character or of consecutive code points (up or down)."""
    best = same = up = down = 1
    for previous, current in pairwise(key):
        step = ord(current) - ord(previous)
        same = same + 1 if step == 0 else 1
        up = up + 1 if step == 1 else 1
        down = down + 1 if step == -1 else 1
        best = max(best, same, up, down)
    return best if key else 0


def _is_periodic(key: str) -> bool:
    """True when the key repeats a shorter unit: "abcabcabcabc", "Secret1!Secret1!"."""
    n = len(key)
    return any(all(key[i] == key[i - p] for i in range(p, n)) for p in range(1, n // 2 + 1))


def secret_key_weakness(key: str) -> str | None:
    """Why the key looks typed rather than generated, or None. Never quotes the key."""
    lowered = key.lower()
    squeezed = re.sub(r"[^a-z0-9]", "", lowered)
    single_case = key in (lowered, key.upper())
    tokens = re.split(r"[^a-z0-9]+", lowered) if single_case else []
    if any(word in squeezed for word in _PLACEHOLDER_WORDS) or any(
        token in _PLACEHOLDER_TOKENS for token in tokens
    ):
        return "it contains a common placeholder word (secret, changeme, dev, ...)"
    if len(set(key)) < MIN_SECRET_KEY_DISTINCT_CHARS:
        return f"it uses fewer than {MIN_SECRET_KEY_DISTINCT_CHARS} distinct characters"
    if _is_periodic(key):
        return "it repeats a shorter pattern"
    if _longest_run(key) > MAX_SECRET_KEY_RUN:
        return "it contains a long run of repeated or consecutive characters"
    # Short keys are reported by their own rule; an entropy estimate adds nothing there.
    if len(key) >= MIN_SECRET_KEY_LENGTH and _estimated_bits(key) < MIN_SECRET_KEY_BITS:
        return f"its characters carry too little randomness (under ~{MIN_SECRET_KEY_BITS} bits)"
    return None


# `secret_key_generated` and `secret()` are views of the `secret_key` field.
@rule(_SECRET_KEY)
def secret_key_missing(settings: Settings) -> Iterator[Finding]:
    # A key made per process breaks every signed token at restart and between processes.
    if settings.secret_key_generated:
        yield error(
            "secret_key.missing",
            _SECRET_KEY,
            f"{env_var(_SECRET_KEY)} is not set (a random key per process invalidates "
            f"tokens at every restart and differs between processes); {_FIX}",
        )


@rule(_SECRET_KEY)
def secret_key_short(settings: Settings) -> Iterator[Finding]:
    if settings.secret_key_generated:
        return
    if len(settings.secret()) < MIN_SECRET_KEY_LENGTH:
        yield error(
            "secret_key.short",
            _SECRET_KEY,
            f"{env_var(_SECRET_KEY)} is shorter than {MIN_SECRET_KEY_LENGTH} characters; {_FIX}",
        )


@rule(_SECRET_KEY)
def secret_key_predictable(settings: Settings) -> Iterator[Finding]:
    if settings.secret_key_generated:
        return
    reason = secret_key_weakness(settings.secret())
    if reason:
        yield error(
            "secret_key.predictable",
            _SECRET_KEY,
            f"{env_var(_SECRET_KEY)} looks predictable: {reason}; {_FIX}",
        )

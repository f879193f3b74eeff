"""Finding secrets in log text: registered values, and strings shaped like a secret."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.log_safety.registry import SecretRegistry

# Shapes no log line may hold whoever made the value (the registry only knows the
# secrets of this process; a worker's log may show another's).
PATTERNS: dict[str, re.Pattern[str]] = {
    # A token worth the name has a digit and some length: "Bearer authentication" is prose.
    "a bearer token": re.compile(r"\bBearer\s+(?=[\w.~+/-]*\d)[\w.~+/-]{16,}=*"),
    "a Stripe secret key": re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"),
    "a Stripe webhook secret": re.compile(r"\bwhsec_[\w+/=-]{8,}"),
    "a JWT": re.compile(r"\beyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*"),
    # `password=...`, `"password": "..."`, `new_password='...'` (not `password_hash`).
    "a password": re.compile(
        r"""(?i)(?<![a-z0-9])password['"]?\s*[:=]\s*(?P<value>'[^']*'|"[^"]*"|[^\s,;&'"})\]]+)"""
    ),
}
# What a password field may show: nothing, the logging's redaction, or Python code
# (a traceback's source line such as `password=credentials.password`).
_HARMLESS_PASSWORDS = frozenset({"", "[redacted]", "none", "null", "str", "secretstr"})
_CODE = re.compile(r"[A-Za-z_][\w.]*")


@dataclass(frozen=True)
class Leak:
    what: str
    context: str  # the text around it, the secret itself masked

    def __str__(self) -> str:
        return f"{self.what}: ...{self.context}..."


def find_leaks(text: str, registry: SecretRegistry) -> list[Leak]:
    leaks = [
        Leak(f"{registry.source(secret)} ({len(secret)} chars)", _context(text, secret))
        for secret in registry.found_in(text)
    ]
    for what, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            if what == "a password" and _harmless_password(match.group("value")):
                continue
            leaks.append(Leak(what, _context(text, match.group(0))))
    return leaks


def _harmless_password(value: str) -> bool:
    quoted = value[:1] in ("'", '"')
    bare = value[1:-1] if quoted else value
    if bare.lower() in _HARMLESS_PASSWORDS or set(bare) == {"*"}:
        return True
    return (
        not quoted
        and _CODE.fullmatch(bare) is not None
        and ("." in bare or "password" in bare.lower())
    )


def _context(text: str, found: str, width: int = 60) -> str:
    at = text.find(found)
    before = text[max(0, at - width) : at]
    after = text[at + len(found) : at + len(found) + width]
    masked = f"{found[:4]}<{len(found) - 4} more chars>"
    return f"{before}{masked}{after}".replace("\n", "\\n")

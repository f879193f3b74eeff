"""The password policy (ASVS 5.0 level 2): length, no truncation, no common passwords."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from core.identity.errors import WeakPasswordError

MAX_PASSWORD_LENGTH = 1024  # bounds hashing work; far above any real passphrase


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    text = resources.files("core.identity").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    min_length: int = 12

    def check(
        self, password: str, *, email: str | None = None, username: str | None = None
    ) -> None:
        """Raise `WeakPasswordError` explaining the first rule the password breaks."""
        if len(password) < self.min_length:
            raise WeakPasswordError(
                f"The password needs at least {self.min_length} characters.", field="password"
            )
        if len(password) > MAX_PASSWORD_LENGTH:
            raise WeakPasswordError(
                f"The password may have at most {MAX_PASSWORD_LENGTH} characters.",
                field="password",
            )
        lowered = password.lower()
        if lowered in _common_passwords() or len(set(password)) <= 2:
            raise WeakPasswordError("This password is too common.", field="password")
        for personal in (email, email.split("@")[0] if email else None, username):
            if personal and len(personal) >= 4 and lowered == personal.lower():
                raise WeakPasswordError(
                    "The password must not be your email or username.", field="password"
                )

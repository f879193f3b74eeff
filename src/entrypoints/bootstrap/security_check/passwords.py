"""Password hashing: argon2 parameters at or above the OWASP floor, no test shortcuts."""

from __future__ import annotations

from collections.abc import Iterator

from adapters.security.argon2 import MIN_MEMORY_COST_KIB, MIN_TIME_COST
from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule
from entrypoints.bootstrap.settings import Settings

_WEAK_HASHING = "passwords.allow_weak_hashing"
_MEMORY = "passwords.argon2_memory_kib"
_TIME = "passwords.argon2_time_cost"


@rule(_WEAK_HASHING)
def weak_hashing_allowed(settings: Settings) -> Iterator[Finding]:
    if settings.passwords.allow_weak_hashing:
        yield error(
            "passwords.weak_hashing_allowed",
            _WEAK_HASHING,
            f"{env_var(_WEAK_HASHING)} is on (tests only); set it to false",
        )


@rule(_MEMORY, _TIME)
def argon2_parameters(settings: Settings) -> Iterator[Finding]:
    passwords = settings.passwords
    if passwords.argon2_memory_kib < MIN_MEMORY_COST_KIB:
        yield error(
            "passwords.argon2_below_floor",
            _MEMORY,
            f"{env_var(_MEMORY)} is below the OWASP floor of {MIN_MEMORY_COST_KIB} KiB",
        )
    if passwords.argon2_time_cost < MIN_TIME_COST:
        yield error(
            "passwords.argon2_below_floor",
            _TIME,
            f"{env_var(_TIME)} is below the OWASP floor of {MIN_TIME_COST} iterations",
        )

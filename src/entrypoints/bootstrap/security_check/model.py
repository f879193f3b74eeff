"""What a rule is and what it reports: `Rule`, `Finding`, and the env-var naming."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from entrypoints.bootstrap.settings import Settings

Severity = Literal["error", "warning"]

ENV_PREFIX = "PORTICO_"


def env_var(*path: str) -> str:
    """The variable that sets a setting, from its path in `Settings`.

    `env_var("sessions", "cookie_secure")` and `env_var("sessions.cookie_secure")` both give
    `PORTICO_SESSIONS__COOKIE_SECURE`.
    """
    parts = [part for dotted in path for part in dotted.split(".")]
    return ENV_PREFIX + "__".join(part.upper() for part in parts)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: a stable rule id, how bad it is, and what to change.

    `setting` is the environment variable to fix; `message` says why, and never contains
    the value of a secret.
    """

    rule: str
    severity: Severity
    setting: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "setting": self.setting,
            "message": self.message,
        }


def error(rule: str, path: str, message: str) -> Finding:
    """An error-level finding about the setting at `path` ("sessions.cookie_secure")."""
    return Finding(rule, "error", env_var(path), message)


def warning(rule: str, path: str, message: str) -> Finding:
    """A warning-level finding about the setting at `path`."""
    return Finding(rule, "warning", env_var(path), message)


Check = Callable[[Settings], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A check and the settings it reads.

    `reads` lists every setting path the check looks at ("sessions.cookie_secure",
    "oauth.github.token_url"); a test walks `Settings` and fails when one does not exist,
    and when a finding names a variable outside them. So a renamed setting fails the
    suite instead of switching its rule off.
    """

    id: str
    reads: tuple[str, ...]
    check: Check

    def __call__(self, settings: Settings) -> list[Finding]:
        return list(self.check(settings))

    def variables(self) -> frozenset[str]:
        """The environment variables behind `reads`: the only ones a finding may name."""
        return frozenset(env_var(path) for path in self.reads)


def rule(*reads: str) -> Callable[[Check], Rule]:
    """Declare a rule: `@rule("debug")` over `def debug(settings) -> Iterator[Finding]`."""

    def declare(check: Check) -> Rule:
        return Rule(id=check.__name__, reads=reads, check=check)

    return declare

"""The production security check (ARCHITECTURE.md section 7).

`start_runtime` calls `startup_check(settings)` first thing when
`PORTICO_ENV=production`: any error-level finding raises `SecurityCheckFailed`, which lists
every problem at once (fixing them one restart at a time would be miserable), and nothing
has been built yet. `portico check-config` prints the same findings without starting.

A rule is a `Rule`: an id, the setting paths it reads, and a function
`Settings -> Iterable[Finding]`, declared with `@rule("sessions.cookie_secure", ...)` in
the module of its concern (`secret_key`, `sessions`, `http`, `database`, `passwords`,
`stores`, `email`, `oauth`, `metrics`) and listed in `runner.RULES`. Rules read typed settings only
(no `getattr`, no network, no files), so the check is fast and deterministic, mypy sees
every access, and the CLI can run it anywhere.

Adding a rule: write the function with the paths it reads, add it to `RULES`, and add a
test that it fires on a bad value and stays quiet on the known-good configuration. A
rule is added together with the settings it reads: a test fails when a declared path is
not a field of `Settings`, or when a finding names a variable outside its rule's paths,
so a renamed setting fails the suite instead of switching its rule off silently.

Findings never contain a secret value, not even a fragment: they name the variable to fix
and the kind of problem, because the report ends up in logs and CI output.
"""

from entrypoints.bootstrap.security_check.model import (
    ENV_PREFIX,
    Finding,
    Rule,
    Severity,
    env_var,
    rule,
)
from entrypoints.bootstrap.security_check.paths import (
    setting_path_exists,
    undeclared_variables,
    unknown_setting_paths,
)
from entrypoints.bootstrap.security_check.runner import (
    RULES,
    SecurityCheckFailed,
    as_production,
    check_settings,
    startup_check,
)
from entrypoints.bootstrap.security_check.secret_key import (
    MAX_SECRET_KEY_RUN,
    MIN_SECRET_KEY_BITS,
    MIN_SECRET_KEY_DISTINCT_CHARS,
    MIN_SECRET_KEY_LENGTH,
    secret_key_weakness,
)
from entrypoints.bootstrap.security_check.sessions import (
    MAX_ACCESS_TOKEN_SECONDS,
    MAX_REFRESH_TOKEN_SECONDS,
    MAX_SESSION_ABSOLUTE_SECONDS,
    MAX_SESSION_IDLE_SECONDS,
)

__all__ = [
    "ENV_PREFIX",
    "MAX_ACCESS_TOKEN_SECONDS",
    "MAX_REFRESH_TOKEN_SECONDS",
    "MAX_SECRET_KEY_RUN",
    "MAX_SESSION_ABSOLUTE_SECONDS",
    "MAX_SESSION_IDLE_SECONDS",
    "MIN_SECRET_KEY_BITS",
    "MIN_SECRET_KEY_DISTINCT_CHARS",
    "MIN_SECRET_KEY_LENGTH",
    "RULES",
    "Finding",
    "Rule",
    "SecurityCheckFailed",
    "Severity",
    "as_production",
    "check_settings",
    "env_var",
    "rule",
    "secret_key_weakness",
    "setting_path_exists",
    "startup_check",
    "undeclared_variables",
    "unknown_setting_paths",
]

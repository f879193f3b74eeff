"""The production security check: each rule fires on a bad value and only then."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from entrypoints.bootstrap.security_check import check_settings, secret_key_weakness
from entrypoints.bootstrap.settings import Settings
from tests.unit.security_check.cases import (
    BAD_CASES,
    DB_PASSWORD,
    GOOD_SECRET,
    METRICS_TOKEN,
    QUIET_CASES,
    REDIS_PASSWORD,
    URLSAFE,
    production,
    rules_of,
)


def test_a_good_production_configuration_has_no_findings() -> None:
    assert check_settings(production()) == []


@pytest.mark.parametrize(
    ("overrides", "expected", "severity"),
    [pytest.param(o, e, s, id=i) for i, o, e, s in BAD_CASES],
)
def test_each_rule_fires_on_a_bad_setting(
    overrides: dict[str, Any], expected: set[str], severity: str
) -> None:
    findings = check_settings(production(**overrides))
    assert rules_of(findings) == expected
    assert {f.severity for f in findings} == {severity}
    for finding in findings:
        # The message names the variable to change, and never quotes a secret.
        assert finding.setting.startswith("PORTICO_")
        assert finding.setting in finding.message
        secrets = (GOOD_SECRET, DB_PASSWORD, REDIS_PASSWORD, METRICS_TOKEN, "short-token")
        for secret in (*secrets, "Mq4vR8sLx2", "guest:guest"):
            assert secret not in finding.message


def test_every_secret_key_problem_is_reported_at_once() -> None:
    findings = check_settings(production(secret_key="changeme"))
    assert rules_of(findings) == {"secret_key.short", "secret_key.predictable"}


@pytest.mark.parametrize("overrides", [pytest.param(o, id=i) for i, o in QUIET_CASES])
def test_quiet_cases_that_look_suspicious_but_are_fine(overrides: dict[str, Any]) -> None:
    assert check_settings(production(**overrides)) == []


def test_generated_keys_are_never_called_predictable() -> None:
    rng = random.Random(11)
    for length in (32, 43, 64):
        for alphabet in (URLSAFE, string.hexdigits.lower()[:16]):
            for _ in range(500):
                key = "".join(rng.choices(alphabet, k=length))
                assert secret_key_weakness(key) is None, key


def test_the_check_evaluates_as_production_whatever_the_environment() -> None:
    # Unset, the cookie flag resolves to Secure in production, so it is no finding...
    dev = production(env="development", sessions={"cookie_secure": None})
    assert not dev.cookie_secure
    assert check_settings(dev) == []
    # ...and the development defaults are reported as they would be in production.
    assert {"secret_key.missing", "database.sqlite", "email.backend"} <= rules_of(
        check_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"cache": {"backend": "redis"}, "sessions": {"backend": "memory"}},
            {"sessions.memory_store"},
            id="cache on redis",
        ),
        pytest.param(
            {"cache": {"backend": "redis"}, "redis": {"url": "rediss://redis.internal:6380"}},
            {"redis.no_password"},
            id="cache redis no password",
        ),
    ],
)
def test_cache_on_redis(overrides: dict[str, Any], expected: set[str]) -> None:
    findings = check_settings(production(**overrides))
    assert rules_of(findings) == expected
    assert {f.severity for f in findings} == {"error"}


def test_the_cache_backend_alone_selects_redis() -> None:
    # Sessions and rate limits elsewhere: only `cache.backend` opens the Redis connection.
    elsewhere = {
        "sessions": {"backend": "memory"},
        "rate_limit": {"backend": "memcached"},
        "redis": {"url": "rediss://redis.internal:6380"},
    }
    findings = check_settings(production(**elsewhere, cache={"backend": "redis"}))
    assert rules_of(findings) == {"sessions.memory_store", "redis.no_password"}
    assert [f.setting for f in findings if f.rule == "redis.no_password"] == ["PORTICO_REDIS__URL"]
    missing = check_settings(
        production(**{**elsewhere, "redis": {"url": None}}, cache={"backend": "redis"})
    )
    assert [f.message for f in missing if f.rule == "redis.url_missing"] == [
        "PORTICO_CACHE__BACKEND select Redis but PORTICO_REDIS__URL is not set"
    ]
    # The control: the same configuration with the cache in memory opens no Redis at all.
    assert rules_of(check_settings(production(**elsewhere, cache={"backend": "memory"}))) == {
        "sessions.memory_store"
    }

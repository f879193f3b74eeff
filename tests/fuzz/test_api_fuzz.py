"""Schemathesis against the in-process app: every operation of /openapi.json, positive and
negative data, every built-in check plus ours, as a browser (session cookie and CSRF
token; pre-session token on the signed-out forms) and as an app (bearer token; nothing on
the signed-out forms), and stateful scenarios along the document's links.

`PORTICO_TEST_FUZZ_EXAMPLES` (default 25) bounds the generated examples per operation and
test (the coverage phase adds its fixed set of boundary cases) and the number of stateful
scenarios. Runs are reproducible: `PORTICO_TEST_FUZZ_SEED` (default 0) seeds the
per-operation tests and the scenarios are derandomized; `PORTICO_TEST_FUZZ_SEED=random`
explores new inputs on every run, e.g. `PORTICO_TEST_FUZZ_SEED=random
PORTICO_TEST_FUZZ_EXAMPLES=500 pytest tests/fuzz`. The app runs on the memory profile with
limits no fuzzing run reaches: a sea of 429s would test nothing.
"""

from __future__ import annotations

import os
from typing import Any

import hypothesis
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import OperationConfig, PositiveDataAcceptanceConfig
from schemathesis.python import asgi

from entrypoints.bootstrap.settings import Settings
from entrypoints.http.app import create_app
from entrypoints.http.cookies import pre_session_cookie_name
from tests.fuzz.checks import build_checks
from tests.fuzz.identities import BEARER, PRE_SESSION, SESSION, SESSION_CSRF, Identities

EXAMPLES = int(os.environ.get("PORTICO_TEST_FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("PORTICO_TEST_FUZZ_SEED", "0")
RANDOM = SEED == "random"
GENEROUS = 10_000


def fuzz_settings() -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="test",
        secret_key="fuzz-test-secret-key-that-is-long-enough-0123456789",
        passwords={"argon2_time_cost": 1, "argon2_memory_kib": 1024, "allow_weak_hashing": True},
        email={"backend": "memory"},
        database={"backend": "memory"},
        sessions={"backend": "memory"},
        rate_limit={
            "anonymous": GENEROUS,
            "authenticated": GENEROUS,
            "routes": {
                "POST /api/v1/users": f"{GENEROUS}/60",
                "POST /api/v1/auth/password/reset-request": f"{GENEROUS}/60",
                "POST /api/v1/auth/email/verify-request": f"{GENEROUS}/60",
            },
            "login_per_account": GENEROUS,
            "login_per_address": GENEROUS,
        },
    )


SETTINGS = fuzz_settings()
APP = create_app(SETTINGS)
# Every fuzzed request runs on schemathesis's event loop, which starts the app's lifespan
# on the first request and ends it after each test item (a fresh app per operation).
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    database="none",
)
if not RANDOM:
    schema.config.seed = int(SEED)
# Where the API answers schema-valid input with a documented 422 for a rule no JSON Schema
# can state (a live single-use token; the common-password list, too few distinct
# characters, a password equal to the email; a page cursor the server did not hand out;
# a tier or pack code that is well formed but not for sale), positive data may get that
# 422: the check still runs there and still refuses a 400, a 415 or an undocumented status.
ACCEPTED = PositiveDataAcceptanceConfig().expected_statuses
BEYOND_THE_SCHEMA = (
    "register",
    "confirm_password_reset",
    "confirm_email_verification",
    "read_credits",
    "list_payments",
    "start_checkout",
    "list_conversations",
    "list_messages",
    "read_usage",
)
for operation_id in BEYOND_THE_SCHEMA:
    schema.config.operations.operations.append(
        OperationConfig.from_dict(
            {
                "include-operation-id": operation_id,
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}},
            }
        )
    )
# A webhook delivery is valid only with a signature over its exact body by the gateway's
# secret: no schema can say that, and anything the fuzzer sends is a 400.
schema.config.operations.operations.append(
    OperationConfig.from_dict(
        {
            "include-operation-id": "stripe_webhook",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}},
        }
    )
)
# A message costs credits, and the fuzzing user has none: 402 is its documented answer.
schema.config.operations.operations.append(
    OperationConfig.from_dict(
        {
            "include-operation-id": "send_message",
            "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "402"]}},
        }
    )
)
IDENTITIES = Identities(APP, SETTINGS.session_cookie_name, pre_session_cookie_name(SETTINGS))
EXTRA_CHECKS = build_checks(IDENTITIES)


def _security(operation: Any) -> list[dict[str, Any]]:
    return list(operation.definition.raw.get("security") or [])


def _needs_a_user(operation: Any) -> bool:
    return any("bearerToken" in requirement for requirement in _security(operation))


def _signed_out_form(operation: Any) -> bool:
    return any("preSessionCsrfCookie" in requirement for requirement in _security(operation))


class BrowserCredentials:
    """A browser: the session cookie and its CSRF token; on the signed-out forms, the
    pre-session token and its cookie. Placeholders, filled in just before the request."""

    def get(self, case: Any, context: Any) -> dict[str, dict[str, str]] | None:
        if _needs_a_user(context.operation):
            cookies, csrf = {IDENTITIES.session_cookie: SESSION}, SESSION_CSRF
        elif _signed_out_form(context.operation):
            cookies, csrf = {IDENTITIES.pre_session_cookie: PRE_SESSION}, PRE_SESSION
        else:
            return None
        return {"cookies": cookies, "headers": {"X-CSRF-Token": csrf}}

    def set(self, case: Any, data: dict[str, dict[str, str]], context: Any) -> None:
        case.cookies = {**(case.cookies or {}), **data["cookies"]}
        case.headers = {**(case.headers or {}), **data["headers"]}


class AppCredentials:
    """A mobile app: a bearer token (a placeholder, filled in just before the request);
    nothing at all on the signed-out forms."""

    def get(self, case: Any, context: Any) -> str | None:
        return BEARER if _needs_a_user(context.operation) else None

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def fuzz(case: schemathesis.Case) -> None:
    """One fuzzed request with live credentials, checked by every check."""
    IDENTITIES.fill(case)
    response = case.call()
    IDENTITIES.after(case, response)  # before the checks, which may raise
    case.validate_response(response, additional_checks=EXTRA_CHECKS)


@schema.auth(BrowserCredentials, refresh_interval=None)
@schema.parametrize()
def test_every_operation_as_a_browser(case: schemathesis.Case) -> None:
    fuzz(case)


@schema.auth(AppCredentials, refresh_interval=None)
@schema.include(lambda context: bool(_security(context.operation))).parametrize()
def test_every_operation_as_an_app(case: schemathesis.Case) -> None:
    fuzz(case)


def test_every_built_in_check_is_on_for_every_operation() -> None:
    """No check is switched off to make the fuzzer pass (configure it, or fix the API)."""
    load_all_checks()
    names = CHECKS.get_all_names()
    assert {"ignored_auth", "positive_data_acceptance", "negative_data_rejection"} <= set(names)
    for result in schema.get_all_operations():
        operation = result.ok()
        for phase in (None, "examples", "coverage", "fuzzing", "stateful"):
            config = schema.config.checks_config_for(operation=operation, phase=phase)
            assert all(config.get_by_name(name=name).enabled for name in names), operation.label


# --- stateful: scenarios along the document's links ------------------------------------


class Scenario:
    """Which client the current stateful scenario plays (set by the machine's setup)."""

    credentials: type[BrowserCredentials] | type[AppCredentials] = BrowserCredentials


@schema.auth(refresh_interval=None)
class ScenarioCredentials:
    def get(self, case: Any, context: Any) -> Any:
        return Scenario.credentials().get(case, context)

    def set(self, case: Any, data: Any, context: Any) -> None:
        Scenario.credentials().set(case, data, context)


class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
    credentials: type[BrowserCredentials] | type[AppCredentials] = BrowserCredentials

    def setup(self) -> None:
        # Each scenario on a fresh app: what a step answers then depends on the steps
        # before it only, which Hypothesis needs to replay a scenario (a second "sign up
        # ada" would otherwise be a 409 and take the scenario elsewhere).
        asgi.shutdown_lifespans()
        Scenario.credentials = self.credentials

    def before_call(self, case: schemathesis.Case) -> None:
        IDENTITIES.fill(case)

    def after_call(self, response: Any, case: schemathesis.Case) -> None:
        super().after_call(response, case)
        IDENTITIES.after(case, response)

    def validate_response(
        self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        super().validate_response(response, case, additional_checks=EXTRA_CHECKS, **kwargs)


class BrowserScenarios(Scenarios):
    credentials = BrowserCredentials


class AppScenarios(Scenarios):
    credentials = AppCredentials


SCENARIO_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    stateful_step_count=6,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=not RANDOM,
)
TestBrowserScenarios = BrowserScenarios.TestCase
TestBrowserScenarios.settings = SCENARIO_SETTINGS
TestAppScenarios = AppScenarios.TestCase
TestAppScenarios.settings = SCENARIO_SETTINGS

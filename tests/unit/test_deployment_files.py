"""docker-compose.yml, the Dockerfile and the README's settings table stay in step with
the settings (there is no Docker engine here: these are `docker compose config`-like
checks, plus the production security check run on what compose would set)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel

from entrypoints.bootstrap.security_check import check_settings, setting_path_exists
from entrypoints.bootstrap.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"

# Services built from Portico's image, and the backing services.
PORTICO_SERVICES = {"migrate", "api", "worker", "beat"}
BACKING_SERVICES = {"postgres", "redis", "memcached", "rabbitmq"}
# No health check where nothing could answer one: the one-shot migration, and beat (it
# only publishes; restarted when it exits). Each says so with `disable: true`.
WITHOUT_HEALTH_CHECK = {"migrate", "beat"}
# Variables compose may set before their setting exists, each with the reason.
# (None now.)
NOT_YET_SETTINGS: set[str] = set()

# What an operator would put in .env: realistic values for every required variable.
SAMPLE_ENVIRONMENT = {
    "POSTGRES_PASSWORD": "Vd8-kQ2_rT7xLm4pZ9wN",
    "REDIS_PASSWORD": "p7Rk2LmQ9xVd4TzW",
    "RABBITMQ_PASSWORD": "Mq4vR8sLx2Tn6Hb",
    "PORTICO_SECRET_KEY": "q3Zt8Vn1Lp6Rx0Ck5Wm2Hy7Bd4Gs9Fj-u_A",
    "SMTP_HOST": "smtp.example.com",
    "FRONTEND_URL": "https://app.example.com",
    "STRIPE_API_KEY": "sk_live_Tq8vK3xZm4Lp7Rw2Nb5Yc9Hd",
    "STRIPE_WEBHOOK_SECRET": "whsec_Tq8vK3xZm4",
    "LLM_BASE_URL": "https://api.openai.com/v1",
    "LLM_API_KEY": "sk-Lq8vT3xZm4Wd",
    "LLM_DEFAULT_MODEL": "gpt-4o-mini",
    "ADMIN_ALLOWED_NETWORKS": '["10.8.0.0/24"]',
}

_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(text: str, environment: dict[str, str]) -> str:
    """Compose's interpolation: `${V}`, `${V:-default}`, `${V:?message}`, `$$`."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name = match[1] or match[4]
        operator, argument = match[2], match[3]
        value = environment.get(name)
        empty = value is None or (value == "" and operator and operator.startswith(":"))
        if operator and operator.endswith("?") and empty:
            raise KeyError(f"{name}: {argument}")
        if operator and operator.endswith("-") and empty:
            return argument
        return value or ""

    return _VARIABLE.sub(replace, text)


def _interpolated(value: Any, environment: dict[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, environment)
    if isinstance(value, list):
        return [_interpolated(item, environment) for item in value]
    if isinstance(value, dict):
        return {key: _interpolated(item, environment) for key, item in value.items()}
    return value


def load_compose(environment: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as compose reads it: YAML first (anchors and merge keys resolved), then
    the variables in its string values."""
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    if environment is not None:
        document = _interpolated(document, environment)
    return document


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(SAMPLE_ENVIRONMENT)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # the `- NAME=value` form
        environment = dict(item.split("=", 1) for item in environment)
    return {str(k): "" if v is None else str(v) for k, v in environment.items()}


# --- docker-compose.yml ---------------------------------------------------------------


def test_compose_runs_the_whole_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == PORTICO_SERVICES | BACKING_SERVICES
    commands = {name: " ".join(compose["services"][name]["command"]) for name in PORTICO_SERVICES}
    assert commands["api"].startswith("portico serve")
    assert " worker" in commands["worker"] and " beat" in commands["beat"]
    assert commands["migrate"] == "portico db upgrade"


def test_every_service_has_a_health_check_where_one_makes_sense(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        # Portico's image has a HEALTHCHECK on /health: a service that is not the API
        # must replace or disable it, or it would be reported unhealthy forever.
        assert check is not None, f"{name} has no healthcheck (or `disable: true`)"
        if name in WITHOUT_HEALTH_CHECK:
            assert check == {"disable": True}, name
            continue
        assert check.get("test"), name
        assert check.get("interval") and check.get("retries"), name
    api_check = " ".join(compose["services"]["api"]["healthcheck"]["test"])
    assert "/ready" in api_check or "/health" in api_check


def test_portico_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in PORTICO_SERVICES:
        depends_on = services[name]["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        assert "postgres" in depends_on, name
        for dependency, condition in depends_on.items():
            assert dependency in services, (name, dependency)
            wanted = (
                "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            )
            assert condition == {"condition": wanted}, (name, dependency)
            if wanted == "service_healthy":
                assert services[dependency]["healthcheck"] != {"disable": True}
        if name != "migrate":
            assert set(depends_on) >= BACKING_SERVICES | {"migrate"}, name


def test_every_portico_variable_compose_sets_is_a_setting(compose: dict[str, Any]) -> None:
    unknown: set[str] = set()
    seen: set[str] = set()
    for service in compose["services"].values():
        for variable in _environment(service):
            if not variable.startswith("PORTICO_"):
                continue
            seen.add(variable)
            path = ".".join(part.lower() for part in variable.removeprefix("PORTICO_").split("__"))
            if not setting_path_exists(path):
                unknown.add(variable)
    assert len(seen) > 20
    # An allow-listed name must really be missing: once it exists, the entry goes.
    assert unknown - NOT_YET_SETTINGS == set()
    for variable in NOT_YET_SETTINGS:
        assert variable in seen


def test_the_variable_check_catches_a_misspelt_setting() -> None:
    # The control: the same walk refuses names Settings does not have.
    for path in ("metrics.tokens", "http.cors_origin", "celery.broker", "redis_url"):
        assert not setting_path_exists(path), path
    assert setting_path_exists("metrics.allowed_networks")


def test_compose_refuses_to_start_without_its_secrets() -> None:
    for required in ("POSTGRES_PASSWORD", "PORTICO_SECRET_KEY", "ADMIN_ALLOWED_NETWORKS"):
        environment = {k: v for k, v in SAMPLE_ENVIRONMENT.items() if k != required}
        with pytest.raises(KeyError, match=required):
            load_compose(environment)


@pytest.mark.parametrize("service", sorted(PORTICO_SERVICES))
def test_what_compose_sets_passes_the_production_security_check(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = _environment(compose["services"][service])
    assert environment["PORTICO_ENV"] == "production"
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.is_production
    assert settings.metrics.allowed_networks  # /metrics is not open
    errors = [f for f in check_settings(settings) if f.severity == "error"]
    assert errors == []


# --- Dockerfile -------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_dockerfile_builds_in_stages_and_runs_as_a_user() -> None:
    instructions = _instructions()
    stages = [argument for op, argument in instructions if op == "FROM"]
    assert len(stages) >= 2
    assert all(" AS " in stage.upper() for stage in stages)
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    final = instructions[last_from:]
    assert any(op == "COPY" and "--from=" in argument for op, argument in final)
    users = [argument for op, argument in final if op == "USER"]
    assert users, "the runtime stage must switch to a user"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert any(op == "HEALTHCHECK" for op, _ in final)
    assert not any(op == "RUN" and "pip install" in argument for op, argument in final), (
        "the runtime stage copies the environment the builder made"
    )


# --- the README's settings table ----------------------------------------------------------


def _leaves(model: type[BaseModel], prefix: str = "PORTICO_") -> Iterator[str]:
    """Every variable that sets a leaf of `model` (nested models walked with `__`)."""
    for name, field in model.model_fields.items():
        nested = [
            c
            for c in (field.annotation, *get_args(field.annotation))
            if isinstance(c, type) and issubclass(c, BaseModel)
        ]
        variable = f"{prefix}{name.upper()}"
        if nested:
            for sub in nested:
                yield from _leaves(sub, f"{variable}__")
        else:
            yield variable


def _documented_variables() -> set[str]:
    """The variables the README's settings table names. A row may abbreviate siblings
    (`PORTICO_DATABASE__POOL_SIZE` / `__MAX_OVERFLOW`); `<PROVIDER>` stands for each
    OAuth provider."""
    providers = [name.upper() for name in ("github", "google")]
    found: set[str] = set()
    for line in README.read_text().splitlines():
        if not line.startswith("| `PORTICO_"):
            continue
        first_cell = line.split("|")[1]
        names = re.findall(r"`([A-Z0-9_<>]+)`", first_cell)
        base = ""
        for name in names:
            if name.startswith("PORTICO_"):
                full = name
                base = name.rsplit("__", 1)[0] if "__" in name else "PORTICO"
            elif name.startswith("__") and base:
                full = base + name
            else:
                continue
            for provider in providers:
                found.add(full.replace("<PROVIDER>", provider))
    return found


def test_the_readme_documents_every_setting() -> None:
    documented = _documented_variables()
    settings = set(_leaves(Settings))
    assert len(settings) > 100
    assert sorted(settings - documented) == []
    # And no row documents a setting that does not exist (Google has no emails URL).
    stale = {v for v in documented - settings if v != "PORTICO_OAUTH__GOOGLE__EMAILS_URL"}
    assert sorted(stale) == []

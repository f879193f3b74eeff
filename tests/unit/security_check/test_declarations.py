"""Every rule declares the settings it reads, and those settings exist.

A rule that reads a setting `Settings` does not have (a rename, a guess at a future name)
would never fire: these tests turn that into a failure. Each check has a control that
shows it failing on a fabricated rule or model, so a pass means something.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from entrypoints.bootstrap import security_check
from entrypoints.bootstrap.oauth_settings import (
    GitHubOAuthSettings,
    OAuthProviderSettings,
    OAuthSettings,
)
from entrypoints.bootstrap.security_check import (
    RULES,
    Finding,
    Rule,
    as_production,
    rule,
    setting_path_exists,
    undeclared_variables,
    unknown_setting_paths,
)
from entrypoints.bootstrap.security_check import oauth as oauth_rules
from entrypoints.bootstrap.security_check.model import error
from entrypoints.bootstrap.settings import Settings
from tests.unit.security_check.cases import BAD_CASES, QUIET_CASES, production


def test_rules_are_registered_once_each() -> None:
    assert len(set(RULES)) == len(RULES)
    assert len({r.id for r in RULES}) == len(RULES)


# --- declared paths exist ---------------------------------------------------------------


def test_every_declared_setting_path_exists_on_settings() -> None:
    unknown = {r.id: unknown_setting_paths(r) for r in RULES}
    assert {rule_id: paths for rule_id, paths in unknown.items() if paths} == {}
    assert all(r.reads for r in RULES), "a rule that reads nothing checks nothing"


def _reads_nothing(settings: Settings) -> Iterator[Finding]:
    return iter(())


def test_the_path_check_fails_on_a_made_up_path() -> None:
    # The control for the test above: the same check catches a rule that guesses.
    fabricated = Rule(
        id="fabricated",
        reads=(
            "sessions.cookie_secure",  # exists
            "oauth.github.emails_url",  # exists, on GitHub's own sub-model
            "admin.allowed_ips",  # no admin section
            "oauth.google.emails_url",  # Google has no such endpoint
            "sessions.cookie_secure.value",  # a bool has no fields
            "cookie_secure",  # a property, not a setting
        ),
        check=_reads_nothing,
    )
    assert unknown_setting_paths(fabricated) == [
        "admin.allowed_ips",
        "oauth.google.emails_url",
        "sessions.cookie_secure.value",
        "cookie_secure",
    ]


def test_the_path_walk_reaches_every_nested_section() -> None:
    for path in ("debug", "smtp.password", "oauth.google.client_secret", "rate_limit.routes"):
        assert setting_path_exists(path), path
    assert not setting_path_exists("")
    assert not setting_path_exists("oauth.gitlab.client_id")


# --- findings name declared variables ---------------------------------------------------


def _configurations() -> Iterator[Settings]:
    """Settings as the check sees them, for every case of the rule tests."""
    yield as_production(production())
    for _, overrides, _, _ in BAD_CASES:
        yield as_production(production(**overrides))
    for _, overrides in QUIET_CASES:
        yield as_production(production(**overrides))
    yield as_production(Settings(_env_file=None))  # type: ignore[call-arg]


def test_every_finding_names_a_variable_its_rule_declares() -> None:
    fired: set[str] = set()
    for settings in _configurations():
        for r in RULES:
            assert undeclared_variables(r, settings) == [], r.id
            if r(settings):
                fired.add(r.id)
    # Every rule fired at least once above, so none escaped this test.
    assert fired == {r.id for r in RULES}


@rule("sessions.backend")
def _names_another_variable(settings: Settings) -> Iterator[Finding]:
    if settings.sessions.backend == "redis":
        yield error("fabricated", "redis.url", "PORTICO_REDIS__URL is what it names")


def test_the_finding_check_fails_on_an_undeclared_variable() -> None:
    settings = as_production(production(sessions={"backend": "redis"}))
    assert undeclared_variables(_names_another_variable, settings) == ["PORTICO_REDIS__URL"]
    # The positive control: declared, the same variable passes.
    declared = Rule("fabricated", ("sessions.backend", "redis.url"), _names_another_variable.check)
    assert undeclared_variables(declared, settings) == []


# --- OAuth: every provider and every endpoint is declared -------------------------------


def _provider_url_paths(model: type[OAuthSettings]) -> set[str]:
    """`oauth.<provider>.<field>` of every URL field of every provider sub-model."""
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        provider = field.annotation
        if isinstance(provider, type) and issubclass(provider, OAuthProviderSettings):
            paths |= {
                f"oauth.{name}.{url}" for url in provider.model_fields if url.endswith("_url")
            }
    return paths


def test_the_oauth_rules_know_every_provider_and_endpoint() -> None:
    assert tuple(OAuthSettings.model_validate({}).providers()) == oauth_rules.PROVIDERS
    missing = _provider_url_paths(OAuthSettings) - set(oauth_rules.oauth_urls.reads)
    assert missing == set()


class _OAuthWithGitLab(OAuthSettings):
    """A provider the rules do not know (only its fields are inspected)."""

    gitlab: GitHubOAuthSettings


def test_the_endpoint_check_fails_on_a_provider_the_rules_do_not_know() -> None:
    # The control for the test above: a provider added to the settings is noticed.
    missing = _provider_url_paths(_OAuthWithGitLab) - set(oauth_rules.oauth_urls.reads)
    assert "oauth.gitlab.token_url" in missing
    assert "oauth.gitlab.emails_url" in missing


# --- typed settings only ----------------------------------------------------------------


def test_rules_read_settings_by_attribute_not_by_name() -> None:
    # `getattr(settings, "x", None)` is how a rule silently stops applying; mypy sees
    # every plain attribute access instead.
    package = Path(security_check.__file__).parent
    sources = {p.name: p.read_text() for p in package.glob("*.py")}
    assert "oauth.py" in sources
    offenders = [name for name, text in sources.items() if "getattr(" in text]
    assert offenders == []

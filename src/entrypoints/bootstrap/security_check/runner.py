"""Running the rules: every finding at once, and the refusal to start in production."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from entrypoints.bootstrap.security_check import (
    admin,
    database,
    email,
    http,
    llm,
    metrics,
    oauth,
    passwords,
    payments,
    secret_key,
    sessions,
    stores,
)
from entrypoints.bootstrap.security_check.model import Finding, Rule
from entrypoints.bootstrap.settings import Settings

_log = structlog.get_logger("portico.security_check")

# In report order (errors are sorted first, then this order holds within each severity).
RULES: tuple[Rule, ...] = (
    secret_key.secret_key_missing,
    secret_key.secret_key_short,
    secret_key.secret_key_predictable,
    database.debug,
    sessions.cookie_secure,
    sessions.session_idle_timeout,
    sessions.session_absolute_lifetime,
    sessions.session_store,
    sessions.token_lifetimes,
    http.trusted_origins,
    http.cors_origins,
    http.frontend_url,
    oauth.oauth_fake_provider,
    oauth.oauth_urls,
    database.database_backend,
    database.database_url,
    database.database_auto_create,
    passwords.weak_hashing_allowed,
    passwords.argon2_parameters,
    stores.redis_url_missing,
    stores.redis_password,
    stores.redis_tls,
    stores.rate_limit_store,
    stores.rate_limits_disabled,
    http.trusted_proxies,
    admin.admin_networks,
    stores.celery_broker_missing,
    stores.amqp_broker,
    email.email_backend,
    email.smtp_tls,
    payments.payments_fake_gateway,
    payments.stripe_api_key,
    payments.stripe_webhook_secret,
    payments.stripe_api_base,
    llm.llm_fake_model,
    llm.llm_openai_connection,
    metrics.metrics_protection,
    http.docs_enabled,
)


class SecurityCheckFailed(RuntimeError):
    """Production start refused; `findings` holds every error and warning found."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        lines = [f"  - [{f.rule}] {f.message}" for f in self.errors]
        super().__init__(
            f"refusing to start with PORTICO_ENV=production: {len(lines)} security "
            "problem(s) in the configuration (run `portico check-config` for the report):\n"
            + "\n".join(lines)
        )

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def as_production(settings: Settings) -> Settings:
    """The same settings with `env=production`, so values that default by profile (the
    cookie's Secure flag) resolve as they would in production."""
    if settings.is_production:
        return settings
    return settings.model_copy(update={"env": "production"})


def check_settings(settings: Settings, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """Every finding for `settings` evaluated as production, errors first, in rule order."""
    production = as_production(settings)
    findings = [finding for rule in rules for finding in rule(production)]
    return sorted(findings, key=lambda f: f.severity != "error")


def startup_check(settings: Settings) -> None:
    """What `start_runtime` runs in production: log every finding, raise on any error.

    Errors are logged one event each (besides the exception) so log pipelines that index
    events, not tracebacks, still show why the process refused to start.
    """
    findings = check_settings(settings)
    for finding in findings:
        method = _log.error if finding.severity == "error" else _log.warning
        method(
            "security_check_error" if finding.severity == "error" else "security_check_warning",
            rule=finding.rule,
            setting=finding.setting,
            detail=finding.message,
        )
    if any(f.severity == "error" for f in findings):
        raise SecurityCheckFailed(findings)

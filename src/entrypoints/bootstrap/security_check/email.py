"""Mail: delivered for real, and encrypted on its way to the relay (links carry tokens)."""

from __future__ import annotations

from collections.abc import Iterator

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule, warning
from entrypoints.bootstrap.security_check.urls import is_loopback
from entrypoints.bootstrap.settings import Settings

_BACKEND = "email.backend"
_SMTP_HOST = "smtp.host"
_STARTTLS = "smtp.starttls"
_USE_TLS = "smtp.use_tls"


@rule(_BACKEND)
def email_backend(settings: Settings) -> Iterator[Finding]:
    # `console` writes every mail, live reset tokens included, to the logs; `memory` drops
    # them, so nobody can verify an address or reset a password.
    backend = settings.email.backend
    if backend in ("console", "memory"):
        effect = (
            "prints mail, live reset tokens included, to stderr"
            if backend == "console"
            else "never delivers mail"
        )
        yield error(
            "email.backend",
            _BACKEND,
            f"{env_var(_BACKEND)}={backend} {effect}; set it to smtp",
        )


@rule(_BACKEND, _SMTP_HOST, _STARTTLS, _USE_TLS)
def smtp_tls(settings: Settings) -> Iterator[Finding]:
    smtp = settings.smtp
    if settings.email.backend != "smtp" or smtp.starttls or smtp.use_tls:
        return
    if not is_loopback(smtp.host):
        yield warning(
            "smtp.no_tls",
            _STARTTLS,
            f"mail to {env_var(_SMTP_HOST)} travels unencrypted (tokens in links); set "
            f"{env_var(_STARTTLS)}=true (port 587) or {env_var(_USE_TLS)}=true (port 465)",
        )

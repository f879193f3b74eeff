"""Payments: a real gateway, live keys, and webhooks that can be verified."""

from __future__ import annotations

from collections.abc import Iterator

from entrypoints.bootstrap.security_check.model import Finding, env_var, error, rule, warning
from entrypoints.bootstrap.settings import Settings

_BACKEND = "payments.backend"
_API_KEY = "stripe.api_key"
_WEBHOOK_SECRET = "stripe.webhook_secret"
_API_BASE = "stripe.api_base"

# Stripe's secret and restricted keys say their mode in their prefix.
_TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
_LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


@rule(_BACKEND)
def payments_fake_gateway(settings: Settings) -> Iterator[Finding]:
    # The fake completes any checkout for free and serves its pay pages from Portico.
    if settings.payments.backend == "fake":
        yield error(
            "payments.fake_gateway",
            _BACKEND,
            f"{env_var(_BACKEND)}=fake gives everything away (its checkout needs no "
            "payment); set it to stripe",
        )


@rule(_BACKEND, _API_KEY)
def stripe_api_key(settings: Settings) -> Iterator[Finding]:
    if settings.payments.backend != "stripe":
        return
    key = settings.stripe.api_key
    if key is None or not key.get_secret_value().strip():
        yield error("stripe.api_key_missing", _API_KEY, f"set {env_var(_API_KEY)}")
        return
    value = key.get_secret_value()
    if value.startswith(_TEST_KEY_PREFIXES):
        yield error(
            "stripe.test_key",
            _API_KEY,
            f"{env_var(_API_KEY)} is a test-mode key: no real payment is taken; use a live key",
        )
    elif not value.startswith(_LIVE_KEY_PREFIXES):
        yield warning(
            "stripe.unknown_key",
            _API_KEY,
            f"{env_var(_API_KEY)} does not look like a Stripe live key (sk_live_/rk_live_)",
        )


@rule(_BACKEND, _WEBHOOK_SECRET)
def stripe_webhook_secret(settings: Settings) -> Iterator[Finding]:
    # Without the endpoint's secret no delivery verifies, so no payment ever takes effect.
    secret = settings.stripe.webhook_secret
    if settings.payments.backend == "stripe" and (
        secret is None or not secret.get_secret_value().strip()
    ):
        yield error(
            "stripe.webhook_secret_missing",
            _WEBHOOK_SECRET,
            f"set {env_var(_WEBHOOK_SECRET)} to the endpoint's signing secret (whsec_...)",
        )


@rule(_BACKEND, _API_BASE)
def stripe_api_base(settings: Settings) -> Iterator[Finding]:
    base = settings.stripe.api_base
    if settings.payments.backend == "stripe" and base is not None:
        if not base.startswith("https://"):
            yield error(
                "stripe.api_base_insecure",
                _API_BASE,
                f"{env_var(_API_BASE)} must be https (the API key travels with every call)",
            )
        else:
            yield warning(
                "stripe.api_base_set",
                _API_BASE,
                f"{env_var(_API_BASE)} sends payments somewhere other than Stripe: {base}",
            )

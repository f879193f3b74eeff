"""Settings translated into the core's policy values, one function each.

A policy is a frozen core dataclass (`SessionPolicy`, `JobPolicy`...) that a service
takes in its constructor; the service registry hands each to whoever asks for its type.
Adding one: write the function and list it in `POLICIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from core.billing.credits import CreditPolicy
from core.billing.entitlements import BillingPolicy
from core.conversations.policy import ConversationPolicy
from core.identity.passwords import PasswordPolicy
from core.identity.policy import AccountLinkPolicy, SessionPolicy
from core.identity.throttle import LoginThrottlePolicy
from core.identity.tokens import TokenPolicy
from core.identity.user_cache import UserCachePolicy
from core.payments.policy import PaymentPolicy
from core.platform.job_policy import JobPolicy
from entrypoints.bootstrap.settings import Settings

# A memory cache lives in one process and never hears of changes made in another (a
# second server process, a worker, the CLI): users are kept at most this long there, so
# logout-all and password changes reach every process within a second (RELIABILITY.md).
PER_PROCESS_USER_TTL_SECONDS = 1


def session_policy(settings: Settings) -> SessionPolicy:
    s = settings.sessions
    return SessionPolicy(
        idle_timeout_seconds=s.idle_timeout_seconds,
        absolute_lifetime_seconds=s.absolute_lifetime_seconds,
        touch_interval_seconds=s.touch_interval_seconds,
    )


def password_policy(settings: Settings) -> PasswordPolicy:
    return PasswordPolicy(min_length=settings.passwords.min_length)


def token_policy(settings: Settings) -> TokenPolicy:
    t = settings.tokens
    return TokenPolicy(
        access_ttl_seconds=t.access_ttl_seconds, refresh_ttl_seconds=t.refresh_ttl_seconds
    )


def login_throttle_policy(settings: Settings) -> LoginThrottlePolicy:
    r = settings.rate_limit
    return LoginThrottlePolicy(
        per_account=r.login_per_account,
        per_address=r.login_per_address,
        window_seconds=r.login_window_seconds,
    )


def user_cache_policy(settings: Settings) -> UserCachePolicy:
    ttl = settings.cache.user_ttl_seconds
    if settings.cache.backend == "memory":
        ttl = min(ttl, PER_PROCESS_USER_TTL_SECONDS)
    return UserCachePolicy(ttl_seconds=ttl)


def account_links(settings: Settings) -> AccountLinkPolicy:
    a = settings.accounts
    return AccountLinkPolicy(
        frontend_url=a.frontend_url,
        verify_path=a.verify_path,
        reset_path=a.reset_path,
        verification_lifetime_seconds=a.verification_token_lifetime_seconds,
        reset_lifetime_seconds=a.reset_token_lifetime_seconds,
        request_window_seconds=a.mail_request_window_seconds,
    )


def job_policy(settings: Settings) -> JobPolicy:
    j = settings.jobs
    return JobPolicy(
        max_attempts=j.max_attempts,
        backoff_base_seconds=j.backoff_base_seconds,
        backoff_max_seconds=max(j.backoff_max_seconds, j.backoff_base_seconds),
        backoff_jitter=j.backoff_jitter,
        timeout_seconds=j.timeout_seconds,
        lease_seconds=j.lease_seconds,
        batch_size=j.batch_size,
        runner_concurrency=j.concurrency,
        poll_interval_seconds=j.poll_interval_seconds,
        keep_done_seconds=j.keep_done_seconds,
    )


def billing_policy(settings: Settings) -> BillingPolicy:
    b = settings.billing
    return BillingPolicy(
        upgrade_url=_upgrade_url(settings), entitlements_ttl_seconds=b.entitlements_ttl_seconds
    )


def credit_policy(settings: Settings) -> CreditPolicy:
    b = settings.billing
    return CreditPolicy(
        reservation_ttl_seconds=b.reservation_ttl_seconds,
        audit_spend_threshold=b.audit_spend_threshold,
        upgrade_url=_upgrade_url(settings),
    )


def payment_policy(settings: Settings) -> PaymentPolicy:
    p = settings.payments
    front = settings.accounts.frontend_url.rstrip("/")
    return PaymentPolicy(
        success_url=p.success_url or f"{front}/billing/success",
        cancel_url=p.cancel_url or f"{front}/billing/cancel",
        portal_return_url=p.portal_return_url or f"{front}/billing",
        grace_period=timedelta(days=p.grace_period_days),
        first_reconcile_lookback=timedelta(hours=p.first_reconcile_lookback_hours),
    )


def conversation_policy(settings: Settings) -> ConversationPolicy:
    llm = settings.llm
    return ConversationPolicy(
        default_model=llm.default_model,
        max_output_tokens=llm.max_output_tokens,
        history_token_budget=llm.history_token_budget,
        timeout_seconds=llm.timeout_seconds,
        micros_per_credit=llm.micros_per_credit,
        # A repeated send waits as long as the first one may take, and a little more.
        reply_wait_seconds=llm.timeout_seconds + 30,
    )


def _upgrade_url(settings: Settings) -> str:
    configured = settings.billing.upgrade_url
    return configured or settings.accounts.frontend_url.rstrip("/") + "/pricing"


POLICIES: tuple[Callable[[Settings], object], ...] = (
    session_policy,
    password_policy,
    token_policy,
    login_throttle_policy,
    user_cache_policy,
    account_links,
    job_policy,
    billing_policy,
    credit_policy,
    payment_policy,
    conversation_policy,
)


def build_policies(settings: Settings) -> dict[type, object]:
    """Every policy, by its type (two policies of one type would be a wiring error)."""
    built: dict[type, object] = {}
    for make in POLICIES:
        policy = make(settings)
        if type(policy) in built:
            raise ValueError(f"two policies of type {type(policy).__name__}")
        built[type(policy)] = policy
    return built

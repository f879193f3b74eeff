"""Sign-in throttling: how many credential checks an account and an address may ask for."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from core.identity.model import Email
from core.platform.rate_limit import LocalRateLimiter, RateLimitDecision, RateLimiter
from core.platform.telemetry import Telemetry
from core.shared.errors import RateLimitedError, UnavailableError
from core.shared.hashing import fingerprint

logger = logging.getLogger(__name__)

# Rule names in `portico_rate_limit_decisions_total`.
ADDRESS_RULE = "login_address"
ACCOUNT_RULE = "login_account"


class LoginThrottledError(RateLimitedError):
    code = "login_throttled"
    default_detail = "Too many sign-in attempts; try again later."


@dataclass(frozen=True, slots=True)
class LoginThrottlePolicy:
    """At most `per_account` attempts on one email and `per_address` attempts from one
    client address within `window_seconds`."""

    per_account: int = 10
    per_address: int = 100
    window_seconds: int = 15 * 60

    def __post_init__(self) -> None:
        if min(self.per_account, self.per_address, self.window_seconds) <= 0:
            raise ValueError("login throttle limits and window must be positive")


class LoginThrottle:
    """Caps password attempts: session login, token sign-in, and the current password
    that confirms a password change or an account deletion.

    Rules:
    - `check` runs before any password hashing, so a throttled guess costs no hash.
    - Every attempt counts, successful ones too: the limit is on guesses, and a
      person signs in far fewer times per window than a script tries.
    - The account key is the email as `Email.normalise` folds it, whether or not it is
      a valid address or an account has it, so the answer (429 `login_throttled`) never
      tells which accounts exist, and every spelling of one address counts as one
      account. Keys hold a fingerprint of the email, not the address itself.
    - The address rule is checked first; a request it refuses does not count against
      the account, so one noisy address cannot lock an account out by itself faster
      than the account rule allows.
    - Never fails open: when the shared limiter is unavailable the in-process
      `fallback` decides (limits then hold per process, which is stricter per process
      but not shared), and the outage is logged.
    - Every decision is reported (`Telemetry.rate_limit_decision`, rules
      `login_address` and `login_account`).
    """

    def __init__(
        self,
        limiter: RateLimiter,
        fallback: LocalRateLimiter,
        policy: LoginThrottlePolicy,
        telemetry: Telemetry,
    ) -> None:
        self._limiter = limiter
        self._fallback = fallback
        self._policy = policy
        self._telemetry = telemetry

    async def check(self, account: str | Email, address: str | None) -> None:
        """Count one attempt; raise `LoginThrottledError` (with `retry_after`) if over.

        `account` is the email as the client typed it (any text) or a user's `Email`.
        """
        policy = self._policy
        if address:
            await self._hit(ADDRESS_RULE, f"login:address:{address}", policy.per_address)
        account_key = fingerprint(Email.normalise(str(account)))
        await self._hit(ACCOUNT_RULE, f"login:account:{account_key}", policy.per_account)

    async def _hit(self, rule: str, key: str, limit: int) -> None:
        window = self._policy.window_seconds
        decision: RateLimitDecision
        try:
            decision = await self._limiter.hit(key, limit, window)
        except UnavailableError:
            logger.warning("rate-limit store unavailable; login throttle runs in process")
            decision = await self._fallback.hit(key, limit, window)
        self._telemetry.rate_limit_decision(rule, decision.allowed)
        if not decision.allowed:
            raise LoginThrottledError(retry_after=max(1, math.ceil(decision.retry_after_seconds)))

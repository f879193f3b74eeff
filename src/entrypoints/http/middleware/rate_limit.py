"""Request rate limits: per user (by tier) or per client address, and per route.

- Every request outside `exempt_paths` (health, readiness, metrics: probes must not be
  throttled) counts against the general limit of its caller: `user:<id>` with the
  limit of the user's tier when authenticated, `address:<client>` otherwise. A route
  with its own rule (`PORTICO_RATE_LIMIT__ROUTES`) also counts against that, keyed the
  same way.
- The client address is the ASGI peer; behind proxies listed in
  `PORTICO_HTTP__TRUSTED_PROXIES` it comes from `X-Forwarded-For` (uvicorn's
  `ProxyHeadersMiddleware`, outermost in the stack), and from nowhere else.
- Allowed answers carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
  (seconds) of the tightest rule; a refused request is a 429 `rate_limited` problem
  with the same headers and `Retry-After`, and reaches nothing behind this layer.
- The store being down (`UnavailableError`) lets the request through without headers
  when `fail_open` is set, counted in `portico_rate_limit_fail_open_total`; otherwise
  it is a 503. Sign-in throttles are not here: they live in core
  (`core.identity.throttle`) and never fail open.
- Every decision is counted in `portico_rate_limit_decisions_total{rule, decision}`
  (the runtime's telemetry, beside the sign-in throttles' rules); refusals also in
  `portico_rate_limited_total{rule}`, kept for existing dashboards.

This layer sits just inside authentication, not before it as ARCHITECTURE.md's list
has it: keys per user and limits per tier need the caller, which authentication
establishes. Authentication costs one session-store read or a signature check per
request, the same order as a rate-limit check itself, and the expensive credential
checks (password hashing) are throttled in core before they run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.identity.callers import LimitRead, TieredLimit
from core.platform.rate_limit import RateLimitDecision, RateLimiter
from core.shared.errors import UnavailableError
from entrypoints.bootstrap.settings import RateLimitSettings, parse_rule
from entrypoints.http.context import GENERAL_LIMIT_KEY, Principal, scope_principal
from entrypoints.http.errors import domain_error_response, problem_response
from entrypoints.http.metrics import HttpMetrics

GENERAL_RULE = "general"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # "general" or "METHOD /path/{template}": bounded, so usable as a label
    limit: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class _RouteRule:
    method: str
    pattern: re.Pattern[str]
    rule: Rule


class RateLimitPolicy:
    """Which rules apply to a request, from `RateLimitSettings`."""

    def __init__(self, settings: RateLimitSettings, exempt_paths: Iterable[str] = ()) -> None:
        self.enabled = settings.enabled
        self.fail_open = settings.fail_open
        window = settings.window_seconds
        # Built once: `rules` runs on every request.
        self._anonymous = Rule(GENERAL_RULE, settings.anonymous, window)
        self._authenticated = Rule(GENERAL_RULE, settings.authenticated, window)
        self._tiers = {
            tier: Rule(GENERAL_RULE, limit, window) for tier, limit in settings.tiers.items()
        }
        self._exempt = frozenset(exempt_paths)
        self._routes: list[_RouteRule] = []
        for route, text in settings.routes.items():
            method, path = route.split(" ", 1)
            limit, route_window = parse_rule(text)
            pattern, _, _ = compile_path(path)
            self._routes.append(_RouteRule(method, pattern, Rule(route, limit, route_window)))

        # The general limit of signed-in callers, counted while they are authenticated
        # (one store read for session, user and limit; see `core.identity.callers`).
        self.signed_in = TieredLimit(
            GENERAL_RULE, settings.authenticated, window, dict(settings.tiers)
        )

    def is_exempt(self, path: str) -> bool:
        return not self.enabled or path in self._exempt

    def general_limit(self, path: str) -> TieredLimit | None:
        """What authentication should count for a signed-in caller of `path`."""
        return None if self.is_exempt(path) else self.signed_in

    def rules(self, method: str, path: str, principal: Principal | None) -> list[Rule]:
        if principal is None:
            general = self._anonymous
        else:
            general = self._tiers.get(principal.user.tier_code, self._authenticated)
        found = [general]
        for route in self._routes:
            if route.method == method and route.pattern.match(path):
                found.append(route.rule)
        return found


def caller_key(scope: Scope, principal: Principal | None) -> str:
    if principal is not None:
        return f"user:{principal.user_id}"
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


def rate_limit_headers(decision: RateLimitDecision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_after_seconds)),
    }


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, policy: RateLimitPolicy, metrics: HttpMetrics) -> None:
        self.app = app
        self.policy = policy
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.policy.is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        runtime = getattr(scope["app"].state, "runtime", None)
        if runtime is None:  # not started: the routes answer 503 themselves
            await self.app(scope, receive, send)
            return
        principal = scope_principal(scope)
        key = caller_key(scope, principal)
        counted = scope["state"].get(GENERAL_LIMIT_KEY) if principal is not None else None
        tightest: RateLimitDecision | None = None
        for rule in self.policy.rules(scope["method"], scope["path"], principal):
            try:
                decision = await self._decide(runtime, rule, key, counted)
            except UnavailableError as exc:
                if not self.policy.fail_open:
                    await domain_error_response(exc)(scope, receive, send)
                    return
                self.metrics.rate_limit_fail_open.inc()
                await self.app(scope, receive, send)
                return
            runtime.telemetry.rate_limit_decision(rule.name, decision.allowed)
            if not decision.allowed:
                self.metrics.rate_limited.labels(rule.name).inc()
                headers = rate_limit_headers(decision)
                headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after_seconds)))
                response = problem_response(
                    429, "rate_limited", "Too many requests; try again later.", headers=headers
                )
                await response(scope, receive, send)
                return
            if tightest is None or decision.remaining < tightest.remaining:
                tightest = decision
        if tightest is None:
            await self.app(scope, receive, send)
            return
        # Appended as raw pairs: no layer behind this one sets RateLimit-* headers.
        extra = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in rate_limit_headers(tightest).items()
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _decide(
        runtime: Any, rule: Rule, key: str, counted: LimitRead | None
    ) -> RateLimitDecision:
        if rule.name == GENERAL_RULE and counted is not None:
            if counted.unavailable:
                raise UnavailableError("Rate limits unavailable.", dependency="rate_limit")
            if counted.decision is not None:
                return counted.decision  # counted already, with the session and user read
        return await runtime.get(RateLimiter).hit(
            f"{rule.name}:{key}", rule.limit, rule.window_seconds
        )

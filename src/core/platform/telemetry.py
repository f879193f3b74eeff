"""The telemetry port: what the core reports about its own work, for operators' metrics.

Services call it where something happened: a rate-limit decision, a cache lookup, a job
run, a model call, credits moved, a payment event handled, a dependency probed. Every
adapter reports the events under the same metric families (`FAMILIES`: names, kinds,
labels), so a dashboard does not depend on the adapter; `FamilyTelemetry` turns each
event into updates of those families, and an adapter only stores and exports them.

Label values are bounded by construction: rule names, cache names, job names, model
names from the price table, event types and outcomes; never ids or user input.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol


class CreditMovement(StrEnum):
    """The kinds of credit movement counted in `portico_credits_total`.

    Reservations count once, when they close: a settled one as a spend of what it kept;
    what a reservation gives back (a release, the rest of a settlement) never left the
    user, so it is not counted. Hence, per user and overall, grants + refunds - spends -
    reversals is the change of the balance.
    """

    GRANT = "grant"  # credits given: a grant, a credit pack bought
    SPEND = "spend"  # credits used: a spend, a reservation settled (what it kept)
    REFUND = "refund"  # credits given back (`CreditService.refund`)
    REVERSAL = "reversal"  # credits taken back after a payment was refunded


class CallOutcome(StrEnum):
    """How a model call ended: `completed` (the model answered, with usage) or `failed`
    (a timeout, a provider error, a cut stream: nothing was charged)."""

    COMPLETED = "completed"
    FAILED = "failed"


class Telemetry(Protocol):
    """Counts, amounts and durations of the core's work.

    Contract:
    - Every method records at once and returns: no I/O, no await, no lock on the
      request path (adapters keep plain numbers; the event loop's thread is the only
      writer), so calling it costs a few dictionary updates.
    - Recording never fails for a dependency: there is none. Amounts, token counts and
      durations below zero are a caller's bug: `ValueError`, nothing recorded.
    - What each call adds to which family is `FamilyTelemetry`'s (the same for every
      adapter); `FAMILIES` lists them with their labels.
    """

    @abstractmethod
    def rate_limit_decision(self, rule: str, allowed: bool) -> None:
        """One rate-limit decision under `rule` (`general`, a route rule, a sign-in
        throttle): `portico_rate_limit_decisions_total{rule, decision}`."""

    @abstractmethod
    def cache_request(self, cache: str, hit: bool) -> None:
        """One lookup in the cache named `cache` (`users`, `entitlements`), a hit or a
        miss (a cache that is down answers a miss): `portico_cache_requests_total`."""

    @abstractmethod
    def job_finished(self, name: str, outcome: str, seconds: float) -> None:
        """One delivery of the job `name` ran to `outcome` (done, retry, dead, skipped,
        fenced) in `seconds`: `portico_jobs_total` and `portico_job_duration_seconds`."""

    @abstractmethod
    def llm_call(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost_micros: int,
        seconds: float,
        outcome: CallOutcome,
    ) -> None:
        """One model call: tokens by direction and cost (micro-units) by model, and its
        duration by model and outcome (`portico_llm_tokens_total`,
        `portico_llm_cost_micros_total`, `portico_llm_request_duration_seconds`)."""

    @abstractmethod
    def credits_moved(self, kind: CreditMovement, amount: int) -> None:
        """`amount` credits moved as `kind`, committed: `portico_credits_total{kind}`."""

    @abstractmethod
    def webhook_event(self, event_type: str, outcome: str) -> None:
        """One payment event handled: its type and what became of it (applied, ignored,
        failed, duplicate): `portico_webhook_events_total{type, outcome}`."""

    @abstractmethod
    def dependency_up(self, name: str, up: bool) -> None:
        """The last probe of dependency `name` answered (`up`) or not:
        `portico_dependency_up{dependency}` is 1 or 0."""


MetricKind = Literal["counter", "histogram", "gauge"]


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """One family every adapter reports: `name` (a counter's samples add `_total`, a
    histogram's `_count`, `_sum`, `_bucket`), its labels, and the label values known
    ahead (`known`), reported at zero from the start so a scrape shows them."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...]
    known: tuple[tuple[str, ...], ...] = ()


RATE_LIMIT_DECISIONS = MetricFamily(
    "portico_rate_limit_decisions",
    "counter",
    "Rate-limit decisions by rule: allowed or refused.",
    ("rule", "decision"),
)
CACHE_REQUESTS = MetricFamily(
    "portico_cache_requests",
    "counter",
    "Cache lookups by cache: hit or miss.",
    ("cache", "result"),
)
JOBS = MetricFamily(
    "portico_jobs", "counter", "Job deliveries run, by job and outcome.", ("name", "outcome")
)
JOB_DURATION = MetricFamily(
    "portico_job_duration_seconds",
    "histogram",
    "Time to run a job delivery, by job and outcome.",
    ("name", "outcome"),
)
LLM_TOKENS = MetricFamily(
    "portico_llm_tokens",
    "counter",
    "Tokens the model provider reported, by model and direction (input, output).",
    ("model", "direction"),
)
LLM_COST = MetricFamily(
    "portico_llm_cost_micros",
    "counter",
    "Cost of model calls in micro-units of the price's currency, by model.",
    ("model",),
)
LLM_DURATION = MetricFamily(
    "portico_llm_request_duration_seconds",
    "histogram",
    "Time of model calls (to the last token), by model and outcome.",
    ("model", "outcome"),
)
CREDITS = MetricFamily(
    "portico_credits",
    "counter",
    "Credits moved, by kind (grant, spend, refund, reversal).",
    ("kind",),
    known=tuple((kind.value,) for kind in CreditMovement),
)
WEBHOOK_EVENTS = MetricFamily(
    "portico_webhook_events",
    "counter",
    "Payment events handled, by type and outcome.",
    ("type", "outcome"),
)
DEPENDENCY_UP = MetricFamily(
    "portico_dependency_up",
    "gauge",
    "Whether the dependency answered its last readiness probe (1) or not (0).",
    ("dependency",),
)

FAMILIES: tuple[MetricFamily, ...] = (
    RATE_LIMIT_DECISIONS,
    CACHE_REQUESTS,
    JOBS,
    JOB_DURATION,
    LLM_TOKENS,
    LLM_COST,
    LLM_DURATION,
    CREDITS,
    WEBHOOK_EVENTS,
    DEPENDENCY_UP,
)

_ALLOWED = ("allowed", "refused")
_RESULT = ("hit", "miss")


class FamilyTelemetry(Telemetry):
    """A `Telemetry` that records every event as updates of `FAMILIES`; an adapter
    implements the three updates (`add`, `observe`, `set`) over its own storage."""

    @abstractmethod
    def add(self, family: MetricFamily, labels: tuple[str, ...], amount: float) -> None:
        """Add `amount` (0 or more) to a counter's series."""

    @abstractmethod
    def observe(self, family: MetricFamily, labels: tuple[str, ...], seconds: float) -> None:
        """Count one observation of `seconds` in a histogram's series."""

    @abstractmethod
    def set(self, family: MetricFamily, labels: tuple[str, ...], value: float) -> None:
        """Set a gauge's series to `value`."""

    def rate_limit_decision(self, rule: str, allowed: bool) -> None:
        self.add(RATE_LIMIT_DECISIONS, (rule, _ALLOWED[not allowed]), 1)

    def cache_request(self, cache: str, hit: bool) -> None:
        self.add(CACHE_REQUESTS, (cache, _RESULT[not hit]), 1)

    def job_finished(self, name: str, outcome: str, seconds: float) -> None:
        _not_negative(seconds=seconds)
        labels = (name, str(outcome))
        self.add(JOBS, labels, 1)
        self.observe(JOB_DURATION, labels, seconds)

    def llm_call(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost_micros: int,
        seconds: float,
        outcome: CallOutcome,
    ) -> None:
        _not_negative(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_micros=cost_micros,
            seconds=seconds,
        )
        self.add(LLM_TOKENS, (model, "input"), input_tokens)
        self.add(LLM_TOKENS, (model, "output"), output_tokens)
        self.add(LLM_COST, (model,), cost_micros)
        self.observe(LLM_DURATION, (model, CallOutcome(outcome).value), seconds)

    def credits_moved(self, kind: CreditMovement, amount: int) -> None:
        _not_negative(amount=amount)
        self.add(CREDITS, (CreditMovement(kind).value,), amount)

    def webhook_event(self, event_type: str, outcome: str) -> None:
        self.add(WEBHOOK_EVENTS, (event_type, str(outcome)), 1)

    def dependency_up(self, name: str, up: bool) -> None:
        self.set(DEPENDENCY_UP, (name,), 1.0 if up else 0.0)


def _not_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be 0 or more, got {value}")

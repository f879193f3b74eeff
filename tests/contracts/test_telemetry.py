"""The `Telemetry` contract, on the Prometheus adapter (read back through its registry,
and through the text a scrape gets) and the in-memory one (read back by sample name):
each event lands in the same families with the same labels and values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from adapters.memory.telemetry import InMemoryTelemetry
from adapters.prometheus.telemetry import PrometheusTelemetry
from core.platform.telemetry import FAMILIES, CallOutcome, CreditMovement, Telemetry

Read = Callable[[str, Mapping[str, str]], float | None]


@dataclass
class Subject:
    telemetry: Telemetry
    read: Read

    def value(self, sample: str, /, **labels: str) -> float:
        found = self.read(sample, labels)
        return 0.0 if found is None else found


def _prometheus() -> Subject:
    telemetry = PrometheusTelemetry(CollectorRegistry())
    return Subject(telemetry, telemetry.registry.get_sample_value)


def _memory() -> Subject:
    telemetry = InMemoryTelemetry()
    return Subject(telemetry, telemetry.value)


@pytest.fixture(params=["prometheus", "memory"])
def subject(request: pytest.FixtureRequest) -> Subject:
    return _prometheus() if request.param == "prometheus" else _memory()


def test_rate_limit_decisions_count_by_rule_and_decision(subject: Subject) -> None:
    for allowed in (True, True, False):
        subject.telemetry.rate_limit_decision("general", allowed)
    subject.telemetry.rate_limit_decision("login_account", False)
    name = "portico_rate_limit_decisions_total"
    assert subject.value(name, rule="general", decision="allowed") == 2
    assert subject.value(name, rule="general", decision="refused") == 1
    assert subject.value(name, rule="login_account", decision="refused") == 1
    assert subject.value(name, rule="login_account", decision="allowed") == 0


def test_cache_requests_count_hits_and_misses_per_cache(subject: Subject) -> None:
    subject.telemetry.cache_request("users", True)
    subject.telemetry.cache_request("users", False)
    subject.telemetry.cache_request("users", True)
    subject.telemetry.cache_request("entitlements", False)
    name = "portico_cache_requests_total"
    assert subject.value(name, cache="users", result="hit") == 2
    assert subject.value(name, cache="users", result="miss") == 1
    assert subject.value(name, cache="entitlements", result="miss") == 1


def test_jobs_count_and_time_by_name_and_outcome(subject: Subject) -> None:
    subject.telemetry.job_finished("mail.send", "done", 0.25)
    subject.telemetry.job_finished("mail.send", "done", 0.5)
    subject.telemetry.job_finished("mail.send", "retry", 2.0)
    done = {"name": "mail.send", "outcome": "done"}
    assert subject.value("portico_jobs_total", **done) == 2
    assert subject.value("portico_job_duration_seconds_count", **done) == 2
    assert subject.value("portico_job_duration_seconds_sum", **done) == pytest.approx(0.75)
    assert subject.value("portico_jobs_total", name="mail.send", outcome="retry") == 1


def test_a_model_call_counts_tokens_cost_and_duration_by_model(subject: Subject) -> None:
    subject.telemetry.llm_call("gpt-x", 120, 30, 4_500, 1.5, CallOutcome.COMPLETED)
    subject.telemetry.llm_call("gpt-x", 80, 10, 2_000, 0.5, CallOutcome.COMPLETED)
    subject.telemetry.llm_call("gpt-x", 0, 0, 0, 3.0, CallOutcome.FAILED)
    assert subject.value("portico_llm_tokens_total", model="gpt-x", direction="input") == 200
    assert subject.value("portico_llm_tokens_total", model="gpt-x", direction="output") == 40
    assert subject.value("portico_llm_cost_micros_total", model="gpt-x") == 6_500
    completed = {"model": "gpt-x", "outcome": "completed"}
    assert subject.value("portico_llm_request_duration_seconds_count", **completed) == 2
    assert subject.value("portico_llm_request_duration_seconds_sum", **completed) == 2.0
    failed = {"model": "gpt-x", "outcome": "failed"}
    assert subject.value("portico_llm_request_duration_seconds_count", **failed) == 1


def test_credits_count_by_kind_and_every_kind_starts_at_zero(subject: Subject) -> None:
    for kind in CreditMovement:
        assert subject.read("portico_credits_total", {"kind": kind.value}) == 0.0
    subject.telemetry.credits_moved(CreditMovement.GRANT, 1_000)
    subject.telemetry.credits_moved(CreditMovement.SPEND, 7)
    subject.telemetry.credits_moved(CreditMovement.SPEND, 3)
    assert subject.value("portico_credits_total", kind="grant") == 1_000
    assert subject.value("portico_credits_total", kind="spend") == 10
    assert subject.value("portico_credits_total", kind="refund") == 0


def test_webhook_events_count_by_type_and_outcome(subject: Subject) -> None:
    subject.telemetry.webhook_event("checkout.session.completed", "applied")
    subject.telemetry.webhook_event("checkout.session.completed", "duplicate")
    subject.telemetry.webhook_event("checkout.session.completed", "applied")
    name = "portico_webhook_events_total"
    assert subject.value(name, type="checkout.session.completed", outcome="applied") == 2
    assert subject.value(name, type="checkout.session.completed", outcome="duplicate") == 1


def test_dependency_up_is_the_last_probe(subject: Subject) -> None:
    subject.telemetry.dependency_up("database", True)
    assert subject.read("portico_dependency_up", {"dependency": "database"}) == 1.0
    subject.telemetry.dependency_up("database", False)
    assert subject.read("portico_dependency_up", {"dependency": "database"}) == 0.0


def test_negative_amounts_are_refused_and_record_nothing(subject: Subject) -> None:
    with pytest.raises(ValueError, match="amount"):
        subject.telemetry.credits_moved(CreditMovement.GRANT, -1)
    with pytest.raises(ValueError, match="output_tokens"):
        subject.telemetry.llm_call("m", 1, -2, 0, 0.1, CallOutcome.COMPLETED)
    with pytest.raises(ValueError, match="seconds"):
        subject.telemetry.job_finished("j", "done", -0.5)
    assert subject.value("portico_credits_total", kind="grant") == 0
    assert subject.read("portico_llm_tokens_total", {"model": "m", "direction": "input"}) is None
    assert subject.read("portico_jobs_total", {"name": "j", "outcome": "done"}) is None


# --- Prometheus only: the scrape ------------------------------------------------------


def test_a_scrape_shows_every_family_from_the_start() -> None:
    telemetry = PrometheusTelemetry(CollectorRegistry())
    text = generate_latest(telemetry.registry).decode()
    parsed = {family.name: family for family in text_string_to_metric_families(text)}
    assert set(parsed) == {family.name for family in FAMILIES}
    for family in FAMILIES:
        assert parsed[family.name].type == family.kind
    credits = {s.labels["kind"]: s.value for s in parsed["portico_credits"].samples}
    assert credits == {kind.value: 0.0 for kind in CreditMovement}


def test_histogram_buckets_are_cumulative_and_end_at_the_count() -> None:
    telemetry = PrometheusTelemetry(CollectorRegistry())
    for seconds in (0.02, 0.3, 0.3, 400.0):
        telemetry.job_finished("sweep", "done", seconds)
    registry = telemetry.registry
    labels = {"name": "sweep", "outcome": "done"}
    bucket = "portico_job_duration_seconds_bucket"
    assert registry.get_sample_value(bucket, {**labels, "le": "0.01"}) == 0
    assert registry.get_sample_value(bucket, {**labels, "le": "0.05"}) == 1
    assert registry.get_sample_value(bucket, {**labels, "le": "0.5"}) == 3
    assert registry.get_sample_value(bucket, {**labels, "le": "300.0"}) == 3
    assert registry.get_sample_value(bucket, {**labels, "le": "+Inf"}) == 4


def test_two_runtimes_in_one_process_keep_their_own_registries() -> None:
    first, second = PrometheusTelemetry(), PrometheusTelemetry()
    first.credits_moved(CreditMovement.GRANT, 5)
    assert first.registry is not second.registry
    assert first.registry.get_sample_value("portico_credits_total", {"kind": "grant"}) == 5
    assert second.registry.get_sample_value("portico_credits_total", {"kind": "grant"}) == 0

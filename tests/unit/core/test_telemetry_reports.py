"""What the core services report through the `Telemetry` port (the world's in-memory
telemetry, read back by sample name): each movement, decision, lookup, event and model
call once, with the labels and amounts the dashboards rely on."""

from __future__ import annotations

import pytest

from adapters.memory.telemetry import InMemoryTelemetry
from core.billing.errors import InsufficientCreditsError
from core.conversations.errors import ModelUnavailableError
from core.identity.throttle import LoginThrottledError
from core.payments.errors import InvalidWebhookError
from tests.unit.core.billing_world import BillingWorld
from tests.unit.core.conversations_world import ConversationsWorld
from tests.unit.core.identity_world import PASSWORD, World
from tests.unit.core.payments_world import PaymentsWorld, event_of
from tests.unit.core.test_user_cache import CacheWorld, DownCache

PACK_CREDITS = 1_000  # the seeded `small` pack


def credits(telemetry: InMemoryTelemetry, kind: str) -> float:
    return telemetry.value("portico_credits_total", {"kind": kind}) or 0.0


async def test_credit_movements_are_reported_once_and_add_up_to_the_balance() -> None:
    world = await BillingWorld().seeded()
    user = await world.member()
    assert user.id is not None
    t = world.telemetry
    await world.credits.grant(user.id, 500, idempotency_key="g1")
    await world.credits.grant(user.id, 500, idempotency_key="g1")  # a repeat: nothing more
    await world.credits.spend(user.id, 30, idempotency_key="s1")
    with pytest.raises(InsufficientCreditsError):
        await world.credits.spend(user.id, 10_000, idempotency_key="s2")
    await world.credits.refund(user.id, 5, idempotency_key="r1")
    held = await world.reservations.reserve(user.id, 100, idempotency_key="res1")
    assert held.id is not None
    assert credits(t, "spend") == 30  # holding is not spending
    await world.reservations.settle(held.id, 40)
    await world.reservations.settle(held.id, 40)  # closed already: the first close stands
    released = await world.reservations.release(
        (await world.reservations.reserve(user.id, 50, idempotency_key="res2")).id or 0
    )
    assert released.status.value == "released"
    await world.credits.take_back(user.id, 25, idempotency_key="tb1")
    await world.credits.take_back(user.id, 25, idempotency_key="tb1")

    assert (credits(t, "grant"), credits(t, "spend"), credits(t, "refund")) == (500, 70, 5)
    assert credits(t, "reversal") == 25
    moved = credits(t, "grant") + credits(t, "refund") - credits(t, "spend")
    assert moved - credits(t, "reversal") == await world.credits.balance(user.id) == 410


async def test_sign_in_throttles_report_each_rule_they_decide() -> None:
    world = World(rate_limit={"login_per_account": 2, "login_per_address": 20})
    await world.accounts.register("ada@example.com", "ada", PASSWORD)
    for _ in range(2):
        await world.throttle.check("ada@example.com", "192.0.2.1")
    with pytest.raises(LoginThrottledError):
        await world.throttle.check("ada@example.com", "192.0.2.1")
    decisions = "portico_rate_limit_decisions_total"
    value = world.telemetry.value
    assert value(decisions, {"rule": "login_address", "decision": "allowed"}) == 3
    assert value(decisions, {"rule": "login_account", "decision": "allowed"}) == 2
    assert value(decisions, {"rule": "login_account", "decision": "refused"}) == 1


async def test_user_and_entitlement_reads_report_a_miss_then_hits() -> None:
    world = await BillingWorld().seeded()
    user = await world.member()  # reads the user once: a miss that stores it
    assert user.id is not None
    await world.users.get(user.id)
    await world.users.get(user.id)
    requests = "portico_cache_requests_total"
    value = world.telemetry.value
    assert value(requests, {"cache": "users", "result": "miss"}) == 1
    assert value(requests, {"cache": "users", "result": "hit"}) == 2
    await world.entitlements.can_use(user, "conversations")
    await world.entitlements.can_use(user, "conversations")
    assert value(requests, {"cache": "entitlements", "result": "miss"}) == 1
    assert value(requests, {"cache": "entitlements", "result": "hit"}) == 1


async def test_a_cache_that_is_down_counts_each_read_as_a_miss() -> None:
    world = CacheWorld(DownCache())
    await world.signed_up()
    login = await world.auth.login("ada@example.com", PASSWORD)
    requests = "portico_cache_requests_total"
    before = world.telemetry.value(requests, {"cache": "users", "result": "miss"}) or 0
    for _ in range(3):
        assert await world.auth.authenticate(login.token) is not None
    after = world.telemetry.value(requests, {"cache": "users", "result": "miss"})
    assert after == before + 3
    assert world.telemetry.value(requests, {"cache": "users", "result": "hit"}) is None


async def test_payment_events_report_type_and_outcome_and_the_credits_they_move() -> None:
    world = await PaymentsWorld().seeded()
    user = await world.member()
    assert user.id is not None
    deliveries = await world.buy(user, credit_pack="small")
    await world.deliver(deliveries)
    await world.deliver(deliveries)  # every one again: duplicates, no credits
    events = "portico_webhook_events_total"
    value = world.telemetry.value
    types = [event_of(d)["type"] for d in deliveries]
    assert "checkout.session.completed" in types
    completed = {"type": "checkout.session.completed"}
    assert value(events, {**completed, "outcome": "applied"}) == 1
    assert value(events, {**completed, "outcome": "duplicate"}) == 1
    ignored = sum(value(events, {"type": t, "outcome": "ignored"}) or 0 for t in set(types))
    applied = sum(value(events, {"type": t, "outcome": "applied"}) or 0 for t in set(types))
    assert ignored + applied == len(deliveries)
    assert credits(world.telemetry, "grant") == PACK_CREDITS

    await world.credits.spend(user.id, 700, idempotency_key="spent")
    charge = next(event_of(d) for d in deliveries if event_of(d)["type"] == "charge.succeeded")
    refunds = world.simulator.refund_charge(charge["data"]["object"]["id"])
    await world.deliver([world.sign(event) for event in refunds])
    await world.deliver([world.sign(event) for event in refunds])  # again: nothing
    assert credits(world.telemetry, "reversal") == 300  # what the balance still held

    with pytest.raises(InvalidWebhookError):
        await world.events.receive(deliveries[0].payload, "t=1,v1=forged")
    assert value(events, {"type": "unknown", "outcome": "refused"}) == 1


async def test_a_model_call_reports_the_usage_and_cost_of_its_reply() -> None:
    world = await ConversationsWorld(llm={"max_output_tokens": 50}).seeded()
    user = await world.funded()
    conversation = await world.conversations.create(user)
    assert conversation.id is not None
    granted = credits(world.telemetry, "grant")
    reply = (await world.messages.send(user, conversation.id, "Hello there")).reply
    value = world.telemetry.value
    model = {"model": "portico-fake"}
    assert value("portico_llm_tokens_total", {**model, "direction": "input"}) == (
        reply.input_tokens
    )
    assert value("portico_llm_tokens_total", {**model, "direction": "output"}) == (
        reply.output_tokens
    )
    assert value("portico_llm_cost_micros_total", model) == reply.cost > 0
    completed = {**model, "outcome": "completed"}
    assert value("portico_llm_request_duration_seconds_count", completed) == 1
    assert credits(world.telemetry, "spend") == reply.credits_charged
    assert credits(world.telemetry, "grant") == granted  # a reservation is no grant

    world.model.fail_next(ModelUnavailableError())
    with pytest.raises(ModelUnavailableError):
        await world.messages.send(user, conversation.id, "again")
    failed = {**model, "outcome": "failed"}
    assert value("portico_llm_request_duration_seconds_count", failed) == 1
    assert value("portico_llm_tokens_total", {**model, "direction": "input"}) == (
        reply.input_tokens
    )
    assert credits(world.telemetry, "spend") == reply.credits_charged  # released: no spend

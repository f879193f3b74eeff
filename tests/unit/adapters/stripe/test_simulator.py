"""The in-memory Stripe account: what each operation changes and the events it emits, in
Stripe's order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.memory.clock import ManualClock
from adapters.stripe.simulator import StripeSimulator
from adapters.stripe.simulator_objects import SimulatorError, add_interval

START = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sim(clock: ManualClock) -> StripeSimulator:
    found = StripeSimulator(clock)
    found.add_price("price_pro", 2000, "usd")
    found.add_price("price_max", 5000, "usd")
    found.add_price("price_pack", 500, "usd", interval=None)
    return found


def checkout(sim: StripeSimulator, mode: str = "subscription", **extra: object) -> str:
    customer = sim.create_customer(email="a@example.com")["id"]
    session = sim.create_checkout_session(
        mode=mode,
        price_id="price_pro" if mode == "subscription" else "price_pack",
        url_base="http://site/fake-gateway/checkout/",
        success_url="http://site/ok",
        cancel_url="http://site/no",
        customer=customer,
        client_reference_id="chk_1",
        **extra,  # type: ignore[arg-type]
    )
    return str(session["id"])


def subscribed(sim: StripeSimulator) -> str:
    events = sim.complete_checkout_session(checkout(sim))
    return str(events[0]["data"]["object"]["id"])


def types(events: list[dict[str, object]]) -> list[object]:
    return [e["type"] for e in events]


def test_a_checkout_session_is_open_with_its_url_and_amount(sim: StripeSimulator) -> None:
    session = sim.retrieve_checkout_session(checkout(sim, metadata={"k": "v"}))
    assert session["id"].startswith("cs_fake_")
    assert session["url"] == f"http://site/fake-gateway/checkout/{session['id']}"
    assert (session["status"], session["payment_status"]) == ("open", "unpaid")
    assert (session["amount_total"], session["currency"]) == (2000, "usd")
    assert session["metadata"] == {"k": "v"}
    assert session["created"] == int(START.timestamp())


def test_a_payment_checkout_emits_a_charge_then_the_completion(sim: StripeSimulator) -> None:
    session_id = checkout(sim, mode="payment")
    events = sim.complete_checkout_session(session_id)
    assert types(events) == ["charge.succeeded", "checkout.session.completed"]
    charge, session = events[0]["data"]["object"], events[1]["data"]["object"]
    assert (session["status"], session["payment_status"]) == ("complete", "paid")
    assert session["payment_intent"] == charge["payment_intent"]
    assert sim.retrieve_payment_intent(charge["payment_intent"])["latest_charge"] == charge["id"]
    assert charge["amount"] == 500


def test_a_subscription_checkout_emits_in_stripes_order(
    sim: StripeSimulator, clock: ManualClock
) -> None:
    events = sim.complete_checkout_session(checkout(sim, subscription_metadata={"user_id": "7"}))
    assert types(events) == [
        "customer.subscription.created",
        "invoice.paid",
        "checkout.session.completed",
    ]
    sub, invoice, session = (e["data"]["object"] for e in events)
    item = sub["items"]["data"][0]
    assert (sub["status"], item["price"]["id"], sub["metadata"]) == (
        "active",
        "price_pro",
        {"user_id": "7"},
    )
    # A month from Jan 31 is Feb 28: Stripe keeps calendar months.
    assert item["current_period_end"] == int(datetime(2026, 2, 28, 12, tzinfo=UTC).timestamp())
    assert invoice["parent"]["subscription_details"]["subscription"] == sub["id"]
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", 2000)
    assert session["subscription"] == sub["id"]
    assert all(e["created"] == int(clock.now().timestamp()) for e in events)
    assert [e["id"] for e in sim.events_since(START)] == [e["id"] for e in events]


def test_a_second_completion_emits_nothing(sim: StripeSimulator) -> None:
    session_id = checkout(sim)
    assert len(sim.complete_checkout_session(session_id)) == 3
    assert sim.complete_checkout_session(session_id) == []
    assert len(sim.events_since(START)) == 3


def test_a_declined_checkout_stays_open(sim: StripeSimulator) -> None:
    session_id = checkout(sim)
    sim.decline_next_checkout()
    with pytest.raises(SimulatorError) as declined:
        sim.complete_checkout_session(session_id)
    assert (declined.value.status, declined.value.code) == (402, "card_declined")
    assert sim.retrieve_checkout_session(session_id)["status"] == "open"
    assert sim.events_since(START) == []
    assert len(sim.complete_checkout_session(session_id)) == 3  # the next attempt pays


def test_checkout_refuses_unknown_prices_customers_and_mismatched_modes(
    sim: StripeSimulator,
) -> None:
    base = {"url_base": "http://x", "success_url": "http://x/ok"}
    with pytest.raises(SimulatorError) as unknown:
        sim.create_checkout_session(mode="payment", price_id="price_nope", **base)  # type: ignore[arg-type]
    assert (unknown.value.status, unknown.value.code) == (400, "resource_missing")
    with pytest.raises(SimulatorError):
        sim.create_checkout_session(mode="payment", price_id="price_pro", **base)  # type: ignore[arg-type]
    with pytest.raises(SimulatorError):
        sim.create_checkout_session(mode="subscription", price_id="price_pack", **base)  # type: ignore[arg-type]
    with pytest.raises(SimulatorError):
        sim.create_checkout_session(
            mode="subscription",
            price_id="price_pro",
            customer="cus_nope",
            **base,  # type: ignore[arg-type]
        )
    sim.add_price("price_any", 100, "eur", flexible=True)
    for mode in ("payment", "subscription"):
        sim.create_checkout_session(mode=mode, price_id="price_any", **base)  # type: ignore[arg-type]


def test_cancel_at_period_end_and_resume_emit_updates(
    sim: StripeSimulator, clock: ManualClock
) -> None:
    sub_id = subscribed(sim)
    clock.advance(10)
    with sim.recording() as emitted:
        ending = sim.update_subscription(sub_id, cancel_at_period_end=True)
        sim.update_subscription(sub_id, cancel_at_period_end=True)  # no change, no event
        resumed = sim.update_subscription(sub_id, cancel_at_period_end=False)
    assert types(emitted) == ["customer.subscription.updated"] * 2
    assert emitted[0]["data"]["previous_attributes"] == {"cancel_at_period_end": False}
    assert ending["cancel_at_period_end"] and ending["canceled_at"] == int(clock.now().timestamp())
    assert not resumed["cancel_at_period_end"] and resumed["canceled_at"] is None


def test_cancel_now_deletes_once(sim: StripeSimulator) -> None:
    sub_id = subscribed(sim)
    with sim.recording() as emitted:
        ended = sim.cancel_subscription(sub_id)
    assert types(emitted) == ["customer.subscription.deleted"]
    assert ended["status"] == "canceled" and ended["ended_at"] is not None
    with pytest.raises(SimulatorError):
        sim.cancel_subscription(sub_id)
    with pytest.raises(SimulatorError):
        sim.update_subscription(sub_id, cancel_at_period_end=True)


def test_a_price_change_is_an_update(sim: StripeSimulator) -> None:
    sub_id = subscribed(sim)
    with sim.recording() as emitted:
        changed = sim.change_price(sub_id, "price_max")
    assert changed["items"]["data"][0]["price"]["id"] == "price_max"
    assert types(emitted) == ["customer.subscription.updated"]
    previous = emitted[0]["data"]["previous_attributes"]["items"]
    assert previous["data"][0]["price"]["id"] == "price_pro"
    with pytest.raises(SimulatorError):
        sim.change_price(sub_id, "price_pack")  # one-time prices do not recur


def test_a_failed_renewal_then_a_paid_one(sim: StripeSimulator) -> None:
    sub_id = subscribed(sim)
    first_end = sim.retrieve_subscription(sub_id)["items"]["data"][0]["current_period_end"]
    failed = sim.fail_renewal(sub_id)
    assert types(failed) == ["invoice.payment_failed", "customer.subscription.updated"]
    invoice, sub = failed[0]["data"]["object"], failed[1]["data"]["object"]
    assert (invoice["status"], invoice["amount_due"], invoice["amount_paid"]) == ("open", 2000, 0)
    assert sub["status"] == "past_due"
    assert sub["items"]["data"][0]["current_period_start"] == first_end
    assert types(sim.fail_renewal(sub_id)) == ["invoice.payment_failed"]  # retried, failed
    paid = sim.pay_renewal(sub_id)
    assert types(paid) == ["invoice.paid", "customer.subscription.updated"]
    assert paid[0]["data"]["object"]["id"] == invoice["id"]
    assert paid[0]["data"]["object"]["attempt_count"] == 3
    assert paid[1]["data"]["object"]["status"] == "active"
    # The period rolled once, when the renewal came due.
    assert paid[1]["data"]["object"]["items"]["data"][0]["current_period_start"] == first_end


def test_a_paid_renewal_advances_the_period(sim: StripeSimulator) -> None:
    sub_id = subscribed(sim)
    before = sim.retrieve_subscription(sub_id)["items"]["data"][0]
    events = sim.pay_renewal(sub_id)
    after = events[1]["data"]["object"]["items"]["data"][0]
    assert after["current_period_start"] == before["current_period_end"]
    assert after["current_period_end"] == add_interval(before["current_period_end"], "month")
    assert events[0]["data"]["object"]["billing_reason"] == "subscription_cycle"


def test_renewals_refuse_ended_or_ending_subscriptions(sim: StripeSimulator) -> None:
    sub_id = subscribed(sim)
    sim.update_subscription(sub_id, cancel_at_period_end=True)
    with pytest.raises(SimulatorError):
        sim.pay_renewal(sub_id)
    sim.cancel_subscription(sub_id)
    with pytest.raises(SimulatorError):
        sim.fail_renewal(sub_id)


def test_refunds_accumulate_up_to_the_charge(sim: StripeSimulator) -> None:
    events = sim.complete_checkout_session(checkout(sim, mode="payment"))
    charge_id = events[0]["data"]["object"]["id"]
    partly = sim.refund_charge(charge_id, 200)
    assert types(partly) == ["charge.refunded"]
    assert partly[0]["data"]["object"]["amount_refunded"] == 200
    assert not partly[0]["data"]["object"]["refunded"]
    with pytest.raises(SimulatorError):
        sim.refund_charge(charge_id, 301)
    rest = sim.refund_charge(charge_id)
    assert rest[0]["data"]["object"]["amount_refunded"] == 500
    assert rest[0]["data"]["object"]["refunded"]
    with pytest.raises(SimulatorError) as again:
        sim.refund_charge(charge_id)
    assert again.value.code == "charge_already_refunded"


def test_a_renewal_charge_can_be_refunded(sim: StripeSimulator) -> None:
    sub_id = subscribed(sim)
    paid = sim.pay_renewal(sub_id)[0]["data"]["object"]
    intent_id = paid["payments"]["data"][0]["payment"]["payment_intent"]
    charge_id = sim.retrieve_payment_intent(intent_id)["latest_charge"]
    assert sim.refund_charge(charge_id)[0]["data"]["object"]["amount_refunded"] == 2000


def test_events_list_newest_first_in_pages(sim: StripeSimulator, clock: ManualClock) -> None:
    for _ in range(3):
        subscribed(sim)
        clock.advance(60)
    oldest_first = [e["id"] for e in sim.events_since(START)]
    assert len(oldest_first) == 9
    newest_first = oldest_first[::-1]
    first = sim.list_events(limit=4)
    assert [e["id"] for e in first["data"]] == newest_first[:4] and first["has_more"]
    second = sim.list_events(limit=4, starting_after=newest_first[3])
    assert [e["id"] for e in second["data"]] == newest_first[4:8] and second["has_more"]
    last = sim.list_events(limit=4, starting_after=newest_first[7])
    assert [e["id"] for e in last["data"]] == newest_first[8:] and not last["has_more"]
    back = sim.list_events(limit=2, ending_before=newest_first[4])
    assert [e["id"] for e in back["data"]] == newest_first[2:4] and back["has_more"]
    since = int((START + timedelta(seconds=60)).timestamp())
    recent = sim.list_events(created={"gte": since}, limit=100)
    assert [e["id"] for e in recent["data"]] == newest_first[:6]
    older = sim.list_events(created={"lt": since}, limit=100)
    assert [e["id"] for e in older["data"]] == newest_first[6:]
    with pytest.raises(SimulatorError):
        sim.list_events(limit=101)
    with pytest.raises(SimulatorError):
        sim.list_events(starting_after="evt_unknown")


def test_unknown_objects_are_resource_missing(sim: StripeSimulator) -> None:
    for read in (sim.retrieve_subscription, sim.retrieve_event, sim.retrieve_checkout_session):
        with pytest.raises(SimulatorError) as missing:
            read("nope")
        assert (missing.value.status, missing.value.code) == (404, "resource_missing")


def test_fail_next_fails_api_calls_only_and_changes_nothing(sim: StripeSimulator) -> None:
    sim.fail_next(SimulatorError.unavailable(), times=2)
    for _ in range(2):
        with pytest.raises(SimulatorError) as failed:
            sim.create_customer()
        assert failed.value.status == 503
    assert sim.customer_ids() == []
    assert sim.create_customer()["id"] in sim.customer_ids()


def test_objects_handed_out_are_copies(sim: StripeSimulator) -> None:
    sub_id = subscribed(sim)
    sim.retrieve_subscription(sub_id)["status"] = "canceled"
    sim.events_since(START)[0]["type"] = "tampered"
    assert sim.retrieve_subscription(sub_id)["status"] == "active"
    assert sim.events_since(START)[0]["type"] == "customer.subscription.created"


def test_the_older_api_shapes_are_written_too(clock: ManualClock) -> None:
    sim = StripeSimulator(clock, legacy_api=True)
    sim.add_price("price_pro", 2000, "usd")
    sub, invoice, _ = (e["data"]["object"] for e in sim.complete_checkout_session(checkout(sim)))
    assert sub["current_period_end"] == sub["items"]["data"][0]["current_period_end"]
    assert invoice["subscription"] == sub["id"]
    assert invoice["payment_intent"] == invoice["payments"]["data"][0]["payment"]["payment_intent"]


@pytest.mark.parametrize(
    ("start", "interval", "end"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), "month", datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2028, 1, 31, tzinfo=UTC), "month", datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), "month", datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), "year", datetime(2029, 2, 28, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), "week", datetime(2026, 1, 8, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), "day", datetime(2026, 1, 2, tzinfo=UTC)),
    ],
)
def test_billing_intervals_keep_calendar_months(
    start: datetime, interval: str, end: datetime
) -> None:
    assert add_interval(int(start.timestamp()), interval) == int(end.timestamp())

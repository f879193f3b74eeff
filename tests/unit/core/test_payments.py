"""Payments on the in-memory world: checkout through the fake gateway, webhook events
once each in any order, replay and reconcile, refunds, and the subscription rules."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest

from adapters.stripe.webhooks import sign
from core.identity.model import DEFAULT_TIER
from core.payments.errors import (
    InvalidWebhookError,
    NotForSaleError,
    SubscriptionExistsError,
)
from core.payments.model import EventOutcome, PaymentStatus, SubscriptionStatus
from core.payments.subscriptions import SubscriptionRules
from tests.unit.core.payments_world import WEBHOOK_SECRET, Delivery, PaymentsWorld, event_of

PACK_CREDITS = 1_000  # the seeded `small` pack


@pytest.fixture
async def world() -> PaymentsWorld:
    return await PaymentsWorld().seeded()


async def test_a_credit_pack_is_paid_once_and_its_credits_granted_once(
    world: PaymentsWorld,
) -> None:
    user = await world.member()
    deliveries = await world.buy(user, credit_pack="small")
    receipts = await world.deliver(deliveries)
    assert [r.duplicate for r in receipts] == [False] * len(deliveries)
    assert user.id is not None
    assert await world.credits.balance(user.id) == PACK_CREDITS
    (payment,) = await world.payments_of(user)
    assert payment.status is PaymentStatus.SUCCEEDED and payment.product_code == "small"
    assert payment.amount == 5_000_000 and payment.currency == "usd"
    # Every delivery again, and the checkout paid again: nothing more.
    again = await world.deliver(deliveries)
    assert all(r.duplicate for r in again)
    session = event_of(deliveries[-1])["data"]["object"]["id"]
    assert list(world.gateway.complete_checkout(session)) == []
    assert await world.credits.balance(user.id) == PACK_CREDITS
    assert await world.ledger_sum(user.id) == PACK_CREDITS
    await world.run_jobs()
    (receipt,) = world.mails(str(user.email), "receipt")
    assert "5.00 USD" in receipt.text
    actions = [entry.action for entry in await world.audit(target_id=str(user.id))]
    assert "payments.payment_recorded" in actions and "billing.purchase_recorded" in actions


async def test_the_same_event_delivered_20_times_at_once_takes_effect_once(
    world: PaymentsWorld,
) -> None:
    user = await world.member()
    assert user.id is not None
    deliveries = await world.buy(user, credit_pack="small")
    completed = deliveries[-1]
    assert event_of(completed)["type"] == "checkout.session.completed"
    receipts = await asyncio.gather(
        *(world.events.receive(completed.payload, completed.signature) for _ in range(20))
    )
    assert sum(not r.duplicate for r in receipts) == 1
    assert await world.credits.balance(user.id) == PACK_CREDITS
    assert len(await world.payments_of(user)) == 1


async def test_a_tier_subscription_puts_the_user_on_the_tier(world: PaymentsWorld) -> None:
    user = await world.member()
    await world.deliver(await world.buy(user, tier="pro"))
    user = await world.reload(user)
    assert user.tier_code == "pro"
    view = await world.checkout.subscription(user)
    assert view.status == "active" and view.tier == "pro" and not view.cancel_at_period_end
    (payment,) = await world.payments_of(user)
    assert payment.tier_code == "pro" and payment.status is PaymentStatus.SUCCEEDED
    with pytest.raises(SubscriptionExistsError):
        await world.checkout.start(user, site_url="http://x", tier="enterprise")


async def test_what_is_not_for_sale_is_refused(world: PaymentsWorld) -> None:
    user = await world.member()
    for what in ({"tier": "free"}, {"tier": "nope"}, {"credit_pack": "nope"}):
        with pytest.raises(NotForSaleError):
            await world.checkout.start(user, site_url="http://x", **what)


LIFECYCLE = (
    "customer.subscription.created",
    "invoice.paid",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)


async def _lifecycle(world: PaymentsWorld) -> tuple[object, dict[str, object]]:
    """A subscription bought, changed and ended at the gateway; its four events, signed."""
    user = await world.member()
    deliveries = await world.buy(user, tier="pro")
    by_type = {event_of(d)["type"]: d for d in deliveries}
    checkout = by_type.pop("checkout.session.completed")
    await world.deliver([checkout])  # the checkout is ours; the rest comes in any order
    subscription = event_of(by_type["customer.subscription.created"])["data"]["object"]["id"]
    world.simulator.update_subscription(subscription, cancel_at_period_end=True)
    world.simulator.cancel_subscription(subscription)
    for event in world.simulator.events_since(world.clock.now() - timedelta(days=1)):
        if event["type"] in LIFECYCLE and event["type"] not in by_type:
            by_type[event["type"]] = world.sign(event)
    assert set(by_type) == set(LIFECYCLE)
    return user, by_type


@pytest.mark.parametrize("order", list(itertools.permutations(LIFECYCLE)))
async def test_every_order_of_a_subscription_lifecycle_ends_in_the_same_state(
    order: tuple[str, ...],
) -> None:
    world = await PaymentsWorld().seeded()
    user, by_type = await _lifecycle(world)
    await world.deliver([by_type[name] for name in order])
    user = await world.reload(user)  # type: ignore[arg-type]
    subscription = await world.subscription_of(user)
    assert subscription is not None and subscription.status is SubscriptionStatus.CANCELED
    assert user.tier_code == DEFAULT_TIER
    (payment,) = await world.payments_of(user)
    assert payment.status is PaymentStatus.SUCCEEDED and payment.tier_code == "pro"


@pytest.mark.parametrize("future", [False, True])
async def test_old_or_future_signatures_are_refused_and_nothing_is_written(
    world: PaymentsWorld, future: bool
) -> None:
    user = await world.member()
    (*_, completed) = await world.buy(user, credit_pack="small")
    signature = completed.signature
    if future:
        signature = sign(
            completed.payload, WEBHOOK_SECRET, world.clock.now() + timedelta(seconds=301)
        )
    else:
        world.clock.advance(301)
    with pytest.raises(InvalidWebhookError) as refused:
        await world.events.receive(completed.payload, signature)
    assert refused.value.code == "stale_timestamp"
    assert await world.stored_event(event_of(completed)["id"]) is None
    assert user.id is not None and await world.credits.balance(user.id) == 0


async def test_signatures_within_the_tolerance_either_way_are_accepted(
    world: PaymentsWorld,
) -> None:
    user = await world.member()
    (*_, completed) = await world.buy(user, credit_pack="small")
    ahead = sign(completed.payload, WEBHOOK_SECRET, world.clock.now() + timedelta(seconds=299))
    (receipt,) = await world.deliver([Delivery(completed.payload, ahead)])
    assert receipt.outcome is EventOutcome.APPLIED


async def test_bad_signatures_and_bodies_are_refused(world: PaymentsWorld) -> None:
    user = await world.member()
    (*_, completed) = await world.buy(user, credit_pack="small")
    tampered = completed.payload.replace(b'"paid"', b'"PAID"')
    for payload, signature, code in (
        (tampered, completed.signature, "invalid_signature"),
        (completed.payload, None, "invalid_signature"),
        (completed.payload, "t=1,v1=00", "invalid_signature"),
    ):
        with pytest.raises(InvalidWebhookError) as refused:
            await world.events.receive(payload, signature)
        assert refused.value.code == code
    assert await world.stored_event(event_of(completed)["id"]) is None


async def test_a_lost_event_is_recovered_by_reconcile_and_a_replay_changes_nothing(
    world: PaymentsWorld,
) -> None:
    user = await world.member()
    assert user.id is not None
    deliveries = await world.buy(user, credit_pack="small")  # never delivered: lost
    run = await world.events.reconcile(world.clock.now() - timedelta(hours=1))
    assert run.found == len(deliveries) and run.applied == len(deliveries)
    assert await world.credits.balance(user.id) == PACK_CREDITS
    again = await world.events.reconcile()
    assert again.applied == 0
    completed = event_of(deliveries[-1])["id"]
    for _ in range(2):
        receipt = await world.events.replay(completed)
        assert receipt.outcome is EventOutcome.APPLIED
    assert await world.credits.balance(user.id) == PACK_CREDITS
    assert len(await world.payments_of(user)) == 1


async def test_an_event_of_another_type_is_stored_and_ignored(world: PaymentsWorld) -> None:
    user = await world.member()
    deliveries = await world.buy(user, credit_pack="small")
    charge = next(d for d in deliveries if event_of(d)["type"] == "charge.succeeded")
    (receipt,) = await world.deliver([charge])
    assert receipt.outcome is EventOutcome.IGNORED
    stored = await world.stored_event(event_of(charge)["id"])
    assert stored is not None and stored.outcome is EventOutcome.IGNORED


async def test_a_refund_takes_the_credits_back_but_never_below_zero(
    world: PaymentsWorld,
) -> None:
    user = await world.member()
    assert user.id is not None
    deliveries = await world.buy(user, credit_pack="small")
    await world.deliver(deliveries)
    await world.credits.spend(user.id, 700, idempotency_key="spent")
    charge = next(event_of(d) for d in deliveries if event_of(d)["type"] == "charge.succeeded")
    refunds = world.simulator.refund_charge(charge["data"]["object"]["id"])
    await world.deliver([world.sign(event) for event in refunds])
    assert await world.credits.balance(user.id) == 0  # 300 left were taken, 700 were spent
    (refunded,) = await world.payments_of(user)
    assert refunded.status is PaymentStatus.REFUNDED
    assert refunded.credits_reversed == 300
    (entry,) = await world.audit(action="payments.payment_refunded")
    assert entry.details["credits_taken"] == 300
    assert entry.details["credits_not_recovered"] == 700
    await world.deliver([world.sign(event) for event in refunds])  # again: nothing
    assert await world.ledger_sum(user.id) == 0


async def test_a_failed_renewal_keeps_the_tier_for_the_grace_period_then_lapses(
    world: PaymentsWorld,
) -> None:
    user = await world.member()
    deliveries = await world.buy(user, tier="pro")
    await world.deliver(deliveries)
    subscription = event_of(deliveries[0])["data"]["object"]["id"]
    await world.deliver([world.sign(e) for e in world.simulator.fail_renewal(subscription)])
    user = await world.reload(user)
    assert user.tier_code == "pro"
    assert (await world.checkout.subscription(user)).status == "past_due"
    await world.run_jobs()
    assert world.mails(str(user.email), "failed")
    world.clock.advance(timedelta(days=8).total_seconds())
    await world.maintenance.run()
    assert (await world.reload(user)).tier_code == DEFAULT_TIER
    # Paying again brings the tier back.
    await world.deliver([world.sign(e) for e in world.simulator.pay_renewal(subscription)])
    assert (await world.reload(user)).tier_code == "pro"


async def test_an_upgrade_is_immediate_and_a_downgrade_waits_for_the_period_end(
    world: PaymentsWorld,
) -> None:
    user = await world.member()
    deliveries = await world.buy(user, tier="pro")
    await world.deliver(deliveries)
    subscription = event_of(deliveries[0])["data"]["object"]["id"]
    world.simulator.add_price("price_enterprise_monthly", 20_000, "usd")
    changed = world.simulator.recording
    with changed() as emitted:
        world.simulator.change_price(subscription, "price_enterprise_monthly")
    await world.deliver([world.sign(e) for e in emitted])
    assert (await world.reload(user)).tier_code == "enterprise"
    with changed() as emitted:
        world.simulator.change_price(subscription, "price_pro_monthly")
    await world.deliver([world.sign(e) for e in emitted])
    user = await world.reload(user)
    assert user.tier_code == "enterprise"
    assert (await world.checkout.subscription(user)).scheduled_tier == "pro"
    world.clock.advance(timedelta(days=32).total_seconds())
    await world.maintenance.run()
    assert (await world.reload(user)).tier_code == "pro"


async def test_cancel_at_period_end_keeps_the_tier_and_cancel_now_ends_it(
    world: PaymentsWorld,
) -> None:
    user = await world.member()
    await world.deliver(await world.buy(user, tier="pro"))
    user = await world.reload(user)
    later = await world.checkout.cancel(user, at_period_end=True)
    assert later.cancel_at_period_end and later.status is SubscriptionStatus.ACTIVE
    assert (await world.reload(user)).tier_code == "pro"
    resumed = await world.checkout.resume(user)
    assert not resumed.cancel_at_period_end
    ended = await world.checkout.cancel(user, at_period_end=False)
    assert ended.status is SubscriptionStatus.CANCELED
    assert (await world.reload(user)).tier_code == DEFAULT_TIER
    actions = [e.action for e in await world.audit(target_id=str(user.id))]
    assert actions.count("payments.subscription_cancel_requested") == 2


async def test_an_older_read_or_news_after_the_end_never_overwrites_the_record(
    world: PaymentsWorld,
) -> None:
    user = await world.member()
    deliveries = await world.buy(user, tier="pro")
    await world.deliver(deliveries)
    subscription_id = event_of(deliveries[0])["data"]["object"]["id"]
    active = await world.gateway.get_subscription(subscription_id)
    world.simulator.cancel_subscription(subscription_id)
    canceled = await world.gateway.get_subscription(subscription_id)
    assert active.status is SubscriptionStatus.ACTIVE
    assert canceled.status is SubscriptionStatus.CANCELED
    rules = world.services.get(SubscriptionRules)
    early, late = world.clock.now(), world.clock.advance(10)
    async with world.payments_uow() as tx:
        applied = await rules.apply(tx, canceled, read_at=late)
        assert applied.subscription is not None
        stale = await rules.apply(tx, active, read_at=early)  # read before the end
        revived = await rules.apply(tx, active, read_at=world.clock.advance(10))  # ended
        await tx.commit()
    assert stale.subscription is None and revived.subscription is None
    stored = await world.subscription_of(user)
    assert stored is not None and stored.status is SubscriptionStatus.CANCELED
    assert (await world.reload(user)).tier_code == DEFAULT_TIER

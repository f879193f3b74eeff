"""How a subscription drives its user's tier.

`SubscriptionRules` applies a subscription as read from the gateway to Portico's record
and to the user's tier, inside the caller's unit of work; `SubscriptionMaintenance` runs
the time-driven part (a grace period that lapses, a downgrade that comes due).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.billing.model import Tier
from core.identity.accounts import AccountService
from core.payments.auditing import PaymentAction, payment_entry
from core.payments.errors import NotForSaleError
from core.payments.model import GatewaySubscription, Subscription, SubscriptionStatus
from core.payments.policy import PaymentPolicy
from core.payments.ports import PaymentsUnitOfWork, PaymentsUnitOfWorkFactory
from core.platform.jobs import Job
from core.shared.clock import Clock
from core.shared.errors import NotFoundError

MAINTAIN_SUBSCRIPTIONS_JOB = "payments.maintain_subscriptions"

# States in which the subscription's tier is the user's (past due: within the grace).
_PAYING = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)


class SubscriptionOwnerUnknownError(NotFoundError):
    code = "subscription_owner_unknown"
    default_detail = "The gateway's subscription belongs to no known customer."


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What applying a snapshot did: the subscription as stored (None: the snapshot was
    older news and nothing changed) and the user whose tier may have moved."""

    subscription: Subscription | None
    user_id: int | None


class SubscriptionRules:
    """Rules:
    - The subscription's state is the gateway's, as read at `read_at`: a read older
      than the stored one never overwrites it, and an ended subscription (canceled,
      expired) stays ended whatever older news arrives. So events applied in any order
      leave the same record.
    - The tier is the one whose gateway price the subscription bills. An upgrade takes
      effect at once; a downgrade waits until the end of the paid period
      (`scheduled_tier_code`), when `SubscriptionMaintenance` applies it.
    - Active or trialing: the user has the subscription's tier. Past due: still, for
      the grace period from the first failed renewal; after it, the default tier.
      Canceled, expired, unpaid or paused: the default tier, at once. Incomplete (the
      first payment pending) changes nothing.
    - Only the user's current subscription moves their tier: news about an ended one
      does not demote a user who has subscribed again since.
    - Every change of tier goes through identity (`AccountService.set_tier_in`, audited
      there) in the caller's transaction; a change of the record is audited here.
    """

    def __init__(self, accounts: AccountService, clock: Clock, policy: PaymentPolicy) -> None:
        self._accounts = accounts
        self._clock = clock
        self._policy = policy

    async def apply(
        self,
        tx: PaymentsUnitOfWork,
        snapshot: GatewaySubscription,
        *,
        read_at: datetime,
        user_id: int | None = None,
    ) -> SyncResult:
        stored = await tx.subscriptions.lock(snapshot.id)
        if stored is not None and _is_older(snapshot, read_at, stored):
            return SyncResult(None, None)
        owner = stored.user_id if stored is not None else await _owner(tx, snapshot, user_id)
        tiers = {tier.code: tier for tier in await tx.tiers.list()}
        billed = _billed_tier(tiers, snapshot, stored)
        tier_code, scheduled = billed, None
        if stored is not None and _waits_for_period_end(tiers, stored, snapshot, billed, read_at):
            tier_code, scheduled = stored.tier_code, billed
        past_due_since = None
        if snapshot.status is SubscriptionStatus.PAST_DUE:
            past_due_since = (stored.past_due_since if stored else None) or read_at
        record = Subscription(
            user_id=owner,
            gateway_subscription_id=snapshot.id,
            gateway_customer_id=snapshot.customer_id,
            tier_code=tier_code,
            status=snapshot.status,
            current_period_end=snapshot.current_period_end,
            cancel_at_period_end=snapshot.cancel_at_period_end,
            scheduled_tier_code=scheduled,
            past_due_since=past_due_since,
            canceled_at=snapshot.canceled_at,
            synced_at=read_at,
            id=stored.id if stored else None,
            created_at=stored.created_at if stored else None,
        )
        saved = await tx.subscriptions.save(record)
        if stored is None or _visible_change(stored, saved):
            await tx.audit.record(
                payment_entry(
                    PaymentAction.SUBSCRIPTION_CHANGED,
                    now=self._clock.now(),
                    user_id=owner,
                    status=saved.status.value,
                    tier=saved.tier_code,
                    scheduled_tier=saved.scheduled_tier_code,
                    cancel_at_period_end=saved.cancel_at_period_end,
                )
            )
        await self.settle_tier(tx, saved)
        return SyncResult(saved, owner)

    async def settle_tier(self, tx: PaymentsUnitOfWork, subscription: Subscription) -> None:
        """Put the subscription's user on the tier the rules give them now."""
        tier = self.tier_for(subscription, self._clock.now())
        if tier is None:
            return
        if subscription.status.ended:
            current = await tx.subscriptions.current(subscription.user_id)
            if current is not None and current.id != subscription.id:
                return  # they subscribed again: the new subscription decides
        await self._accounts.set_tier_in(
            tx, subscription.user_id, tier, reason=f"subscription_{subscription.status.value}"
        )

    def tier_for(self, subscription: Subscription, now: datetime) -> str | None:
        """The tier the subscription gives its user at `now`; None: leave it as it is."""
        status = subscription.status
        if status in _PAYING:
            return subscription.tier_code
        if status is SubscriptionStatus.INCOMPLETE:
            return None
        since = subscription.past_due_since
        if status is SubscriptionStatus.PAST_DUE and since is not None:
            return (
                subscription.tier_code
                if now < since + self._policy.grace_period
                else self._policy.default_tier
            )
        return self._policy.default_tier


class SubscriptionMaintenance:
    """Rules: what time alone changes. A past-due subscription whose grace period has
    passed puts its user on the default tier; a downgrade whose paid period has ended
    takes effect. Runs as the periodic job `MAINTAIN_SUBSCRIPTIONS_JOB`; each change is
    one transaction, so a failure leaves the others done."""

    def __init__(
        self,
        uow: PaymentsUnitOfWorkFactory,
        rules: SubscriptionRules,
        clock: Clock,
        policy: PaymentPolicy,
    ) -> None:
        self._uow = uow
        self._rules = rules
        self._clock = clock
        self._policy = policy

    async def run(self) -> int:
        """Apply what is due; returns how many subscriptions were looked at."""
        now = self._clock.now()
        batch = self._policy.maintenance_batch
        async with self._uow(read_only=True) as tx:
            lapsed = await tx.subscriptions.past_due_since_before(
                now - self._policy.grace_period, batch
            )
            due = await tx.subscriptions.scheduled_due(now, batch)
        for subscription in lapsed:
            async with self._uow() as tx:
                locked = await tx.subscriptions.lock(subscription.gateway_subscription_id)
                if locked is not None and locked.status is SubscriptionStatus.PAST_DUE:
                    await self._rules.settle_tier(tx, locked)
                    await tx.commit()
        for subscription in due:
            async with self._uow() as tx:
                locked = await tx.subscriptions.lock(subscription.gateway_subscription_id)
                if locked is None or locked.scheduled_tier_code is None:
                    continue
                saved = await tx.subscriptions.save(
                    locked.copy(tier_code=locked.scheduled_tier_code, scheduled_tier_code=None)
                )
                await self._rules.settle_tier(tx, saved)
                await tx.commit()
        return len(lapsed) + len(due)

    async def handle_maintain_subscriptions(self, job: Job) -> None:
        """The `MAINTAIN_SUBSCRIPTIONS_JOB` handler (idempotent: it applies the state)."""
        await self.run()


def _is_older(snapshot: GatewaySubscription, read_at: datetime, stored: Subscription) -> bool:
    if stored.status.ended and not snapshot.status.ended:
        return True
    return stored.synced_at is not None and read_at < stored.synced_at


async def _owner(tx: PaymentsUnitOfWork, snapshot: GatewaySubscription, hint: int | None) -> int:
    customer = await tx.customers.by_gateway_id(snapshot.customer_id)
    if customer is not None:
        return customer.user_id
    if hint is not None:
        return hint
    raise SubscriptionOwnerUnknownError()


def _billed_tier(
    tiers: dict[str, Tier], snapshot: GatewaySubscription, stored: Subscription | None
) -> str:
    for tier in tiers.values():
        if snapshot.price_id is not None and tier.gateway_price_id == snapshot.price_id:
            return tier.code
    if stored is not None:  # a price no tier names any more: keep what it was
        return stored.scheduled_tier_code or stored.tier_code
    raise NotForSaleError("The subscription's price is no tier's gateway price.")


def _waits_for_period_end(
    tiers: dict[str, Tier],
    stored: Subscription,
    snapshot: GatewaySubscription,
    billed: str,
    read_at: datetime,
) -> bool:
    """A move to a lower tier while the higher one is paid for waits for the period end."""
    if snapshot.status.ended or stored.current_period_end is None:
        return False
    if read_at >= stored.current_period_end:
        return False
    if stored.scheduled_tier_code == billed:
        return True
    old, new = tiers.get(stored.tier_code), tiers.get(billed)
    return old is not None and new is not None and new.rank < old.rank


def _visible_change(before: Subscription, after: Subscription) -> bool:
    fields = ("status", "tier_code", "scheduled_tier_code", "cancel_at_period_end")
    return any(getattr(before, name) != getattr(after, name) for name in fields)

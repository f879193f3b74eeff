"""What each gateway event does, inside the transaction that stores it.

`EventEffects.apply` is called with the unit of work that also stores the event, so
the event and its effects commit together or not at all. Every effect is idempotent
(keyed by the gateway object it stands for), so applying an event again, a replay or
a reconcile after all, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.billing.credits import CreditService
from core.billing.plans import PlanService, RecordedPurchase
from core.notifications.model import EmailCategory
from core.notifications.service import queue_email
from core.notifications.templates import PAYMENT_FAILED, PAYMENT_RECEIPT
from core.payments.auditing import PaymentAction, payment_entry
from core.payments.errors import CheckoutNotFoundError, PaymentNotFoundError
from core.payments.model import (
    ChargeRefunded,
    CheckoutCompleted,
    CheckoutKind,
    GatewayEvent,
    GatewaySubscription,
    InvoiceSettled,
    Payment,
    PaymentKind,
    PaymentStatus,
    SubscriptionChanged,
)
from core.payments.policy import PaymentPolicy
from core.payments.ports import PaymentsUnitOfWork
from core.payments.subscriptions import SubscriptionOwnerUnknownError, SubscriptionRules
from core.shared.clock import Clock
from core.shared.money import format_money


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A subscription as read from the gateway for an event, and when it was read."""

    subscription: GatewaySubscription
    read_at: datetime


@dataclass(slots=True)
class Changed:
    """Users whose entitlements changed: forgotten from the cache after commit; and the
    credits moved (purchases' grants, refunds' reversals): reported after commit."""

    users: set[int] = field(default_factory=set)
    purchases: list[RecordedPurchase] = field(default_factory=list)
    credits_reversed: int = 0


class EventEffects:
    """Rules:
    - A completed checkout for a credit pack records the payment and the purchase; the
      credits come with the purchase (once per checkout). For a tier, the subscription
      it created is applied (`SubscriptionRules`).
    - An invoice records a payment once per invoice; a paid invoice beats a failed one
      (a later retry that succeeded), never the other way. A receipt goes out once per
      payment that succeeded, a failure notice once per failed invoice (mail jobs in
      this transaction).
    - A refund only grows: the refunded amount is the largest the gateway reported. A
      credit pack's refund takes back its share of the credits (rounded up), no more
      than the balance holds: what could not be taken back is in the audit entry.
    """

    def __init__(
        self,
        plans: PlanService,
        credits: CreditService,
        rules: SubscriptionRules,
        clock: Clock,
        policy: PaymentPolicy,
    ) -> None:
        self._plans = plans
        self._credits = credits
        self._rules = rules
        self._clock = clock
        self._policy = policy

    async def apply(
        self, tx: PaymentsUnitOfWork, event: GatewayEvent, snapshot: Snapshot | None
    ) -> Changed:
        changed = Changed()
        subject = event.subject
        if isinstance(subject, CheckoutCompleted):
            await self._checkout_completed(tx, subject, snapshot, changed)
        elif isinstance(subject, InvoiceSettled):
            await self._invoice(tx, subject, snapshot, changed)
        elif isinstance(subject, ChargeRefunded):
            await self._refund(tx, subject, changed)
        elif isinstance(subject, SubscriptionChanged):
            await self._sync(tx, snapshot, changed)
        return changed

    # --- checkout ---------------------------------------------------------------------

    async def _checkout_completed(
        self,
        tx: PaymentsUnitOfWork,
        subject: CheckoutCompleted,
        snapshot: Snapshot | None,
        changed: Changed,
    ) -> None:
        checkout = await tx.checkouts.get(subject.reference) if subject.reference else None
        if checkout is None:
            raise CheckoutNotFoundError("The completed checkout was not started by Portico.")
        if not subject.paid:
            return  # paid later (a bank transfer): its own event will say so
        now = self._clock.now()
        await tx.checkouts.complete(checkout.id, now)
        if checkout.kind is CheckoutKind.TIER:
            await self._sync(tx, snapshot, changed, user_id=checkout.user_id)
            return
        product = await tx.products.get(checkout.code)
        credits = product.credits if product is not None else 0
        payment, new = await _record(
            tx,
            Payment(
                user_id=checkout.user_id,
                reference=subject.session_id,
                kind=PaymentKind.CREDIT_PACK,
                amount=subject.amount_total,
                currency=subject.currency,
                status=PaymentStatus.SUCCEEDED,
                product_code=checkout.code,
                gateway_payment_id=subject.payment_id,
                credits_granted=credits,
            ),
        )
        recorded = await self._plans.record_purchase_in(
            tx, checkout.user_id, checkout.code, reference=f"checkout:{checkout.id}"
        )
        if recorded.new:
            changed.users.add(checkout.user_id)
            changed.purchases.append(recorded)
        if new:
            await self._recorded(tx, payment, description=product.name if product else "")

    # --- invoices ---------------------------------------------------------------------

    async def _invoice(
        self,
        tx: PaymentsUnitOfWork,
        subject: InvoiceSettled,
        snapshot: Snapshot | None,
        changed: Changed,
    ) -> None:
        customer = await tx.customers.by_gateway_id(subject.customer_id)
        if customer is None:
            raise SubscriptionOwnerUnknownError("The invoice's customer is not a Portico user.")
        status = PaymentStatus.SUCCEEDED if subject.paid else PaymentStatus.FAILED
        tier_code = None
        if subject.subscription_id is not None:
            stored = await tx.subscriptions.lock(subject.subscription_id)
            tier_code = stored.tier_code if stored is not None else None
        payment = await tx.payments.lock(subject.invoice_id)
        if payment is None:
            payment, _ = await _record(
                tx,
                Payment(
                    user_id=customer.user_id,
                    reference=subject.invoice_id,
                    kind=PaymentKind.SUBSCRIPTION,
                    amount=subject.amount,
                    currency=subject.currency,
                    status=status,
                    tier_code=tier_code,
                    gateway_payment_id=subject.payment_id,
                    gateway_subscription_id=subject.subscription_id,
                ),
            )
            if subject.paid:
                await self._recorded(tx, payment, description="Subscription")
            else:
                await self._failed(tx, payment)
        elif payment.status is PaymentStatus.FAILED and subject.paid:
            payment = await tx.payments.update(
                payment.copy(
                    status=PaymentStatus.SUCCEEDED,
                    amount=subject.amount,
                    gateway_payment_id=subject.payment_id or payment.gateway_payment_id,
                )
            )
            await self._recorded(tx, payment, description="Subscription")
        await self._sync(tx, snapshot, changed, user_id=customer.user_id)

    # --- refunds ----------------------------------------------------------------------

    async def _refund(
        self, tx: PaymentsUnitOfWork, subject: ChargeRefunded, changed: Changed
    ) -> None:
        found = None
        if subject.payment_id is not None:
            found = await tx.payments.by_gateway_payment(subject.payment_id)
        if found is None:
            raise PaymentNotFoundError("No payment is recorded for this charge.")
        payment = await tx.payments.lock(found.reference)
        assert payment is not None
        refunded = min(max(payment.amount_refunded, subject.amount_refunded), payment.amount)
        if refunded == payment.amount_refunded:
            return  # older or repeated news
        taken = 0
        owed = 0
        if payment.kind is PaymentKind.CREDIT_PACK and payment.amount > 0:
            owed = -(-payment.credits_granted * refunded // payment.amount)  # rounded up
            due = owed - payment.credits_reversed
            if due > 0:
                entry = await self._credits.take_back_in(
                    tx,
                    payment.user_id,
                    due,
                    idempotency_key=f"refund:{payment.reference}:{refunded}",
                    source=f"payment:{payment.id}",
                )
                taken = -entry.delta if entry is not None else 0
                changed.users.add(payment.user_id)
                changed.credits_reversed += taken
        status = (
            PaymentStatus.REFUNDED
            if refunded >= payment.amount
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        await tx.payments.update(
            payment.copy(
                status=status,
                amount_refunded=refunded,
                credits_reversed=payment.credits_reversed + taken,
            )
        )
        await tx.audit.record(
            payment_entry(
                PaymentAction.PAYMENT_REFUNDED,
                now=self._clock.now(),
                user_id=payment.user_id,
                payment_id=payment.id,
                amount_refunded=refunded,
                currency=payment.currency,
                credits_taken=taken,
                credits_not_recovered=max(owed - payment.credits_reversed - taken, 0),
            )
        )

    # --- shared -----------------------------------------------------------------------

    async def _sync(
        self,
        tx: PaymentsUnitOfWork,
        snapshot: Snapshot | None,
        changed: Changed,
        *,
        user_id: int | None = None,
    ) -> None:
        if snapshot is None:
            return
        result = await self._rules.apply(
            tx, snapshot.subscription, read_at=snapshot.read_at, user_id=user_id
        )
        if result.user_id is not None:
            changed.users.add(result.user_id)

    async def _recorded(
        self, tx: PaymentsUnitOfWork, payment: Payment, *, description: str
    ) -> None:
        await tx.audit.record(
            payment_entry(
                PaymentAction.PAYMENT_RECORDED,
                now=self._clock.now(),
                user_id=payment.user_id,
                payment_id=payment.id,
                kind=payment.kind.value,
                amount=payment.amount,
                currency=payment.currency,
                product=payment.product_code,
                tier=payment.tier_code,
                credits=payment.credits_granted or None,
            )
        )
        await self._mail(tx, payment, PAYMENT_RECEIPT, f"receipt:{payment.reference}", description)

    async def _failed(self, tx: PaymentsUnitOfWork, payment: Payment) -> None:
        await tx.audit.record(
            payment_entry(
                PaymentAction.PAYMENT_FAILED,
                now=self._clock.now(),
                user_id=payment.user_id,
                payment_id=payment.id,
                amount=payment.amount,
                currency=payment.currency,
            )
        )
        await self._mail(
            tx, payment, PAYMENT_FAILED, f"payment_failed:{payment.reference}", "Subscription"
        )

    async def _mail(
        self,
        tx: PaymentsUnitOfWork,
        payment: Payment,
        template: str,
        key: str,
        description: str,
    ) -> None:
        user = await tx.users.get(payment.user_id)
        if user is None:
            return  # the account is gone: nobody to write to
        await queue_email(
            tx.jobs,
            user_id=user.id,
            to=str(user.email),
            template=template,
            context={
                "username": str(user.username),
                "amount": format_money(payment.amount, payment.currency),
                "description": description or payment.kind.value,
                "link": self._policy.portal_return_url,
            },
            category=EmailCategory.BILLING,
            idempotency_key=key,
        )


async def _record(tx: PaymentsUnitOfWork, payment: Payment) -> tuple[Payment, bool]:
    """The payment with this reference: the stored one, or this one added (True)."""
    existing = await tx.payments.lock(payment.reference)
    if existing is not None:
        return existing, False
    return await tx.payments.add(payment), True

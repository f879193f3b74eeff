"""What a user does with billing: buy a tier or a credit pack through a hosted checkout,
open the customer portal, see, cancel and resume their subscription, list payments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.billing.model import Product, ProductKind, Tier
from core.billing.plans import PlanService
from core.identity.model import User
from core.payments.auditing import PaymentAction, payment_entry
from core.payments.errors import (
    CustomerExistsError,
    NotForSaleError,
    SubscriptionExistsError,
    SubscriptionNotFoundError,
)
from core.payments.model import (
    Checkout,
    CheckoutKind,
    CheckoutMode,
    CheckoutRequest,
    Customer,
    GatewaySubscription,
    Payment,
    Subscription,
)
from core.payments.policy import PaymentPolicy
from core.payments.ports import PaymentGateway, PaymentsUnitOfWorkFactory
from core.payments.subscriptions import SubscriptionRules
from core.shared.clock import Clock
from core.shared.ids import TokenGenerator
from core.shared.query import Page, PageRequest


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """The caller's plan as `GET /billing/subscription` shows it: `status` is `none`
    for a user who never subscribed."""

    tier: str
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    scheduled_tier: str | None = None


class CheckoutService:
    """Rules:
    - A checkout sells one public tier with a gateway price (a subscription) or one
      active credit pack with a gateway price; anything else is `not_for_sale`. A user
      with a subscription that has not ended changes plans in the portal instead
      (`subscription_exists`), so nobody pays twice for two plans.
    - Each user has one gateway customer, created on first need with an idempotency
      key derived from the user id, so concurrent first checkouts make one customer.
    - Portico's checkout id is random and unguessable; the gateway gets it as the
      client reference (the completed event names it) and as the idempotency key.
    - Cancel and resume go to the gateway, and the answer is applied at once with the
      same rules as the gateway's events (`SubscriptionRules`); the event that follows
      changes nothing more. Both are audited.
    """

    def __init__(
        self,
        uow: PaymentsUnitOfWorkFactory,
        gateway: PaymentGateway,
        rules: SubscriptionRules,
        plans: PlanService,
        tokens: TokenGenerator,
        clock: Clock,
        policy: PaymentPolicy,
    ) -> None:
        self._uow = uow
        self._gateway = gateway
        self._rules = rules
        self._plans = plans
        self._tokens = tokens
        self._clock = clock
        self._policy = policy

    async def start(
        self,
        user: User,
        *,
        site_url: str,
        tier: str | None = None,
        credit_pack: str | None = None,
    ) -> Checkout:
        """A hosted checkout for `tier` or `credit_pack` (exactly one); its `url` is
        where to send the user."""
        assert user.id is not None
        if (tier is None) == (credit_pack is None):
            raise NotForSaleError("Name a tier or a credit pack.")
        kind = CheckoutKind.TIER if tier is not None else CheckoutKind.CREDIT_PACK
        code = tier if tier is not None else credit_pack
        assert code is not None
        item = await self._for_sale(user.id, kind, code)
        assert item.gateway_price_id is not None
        customer = await self._customer(user)
        checkout = Checkout(id=self._tokens.token(24), user_id=user.id, kind=kind, code=code)
        now = self._clock.now()
        async with self._uow() as tx:
            checkout = await tx.checkouts.add(checkout.copy(created_at=now))
            await tx.audit.record(
                payment_entry(
                    PaymentAction.CHECKOUT_STARTED,
                    now=now,
                    user_id=user.id,
                    actor_id=user.id,
                    kind=kind.value,
                    code=code,
                )
            )
            await tx.commit()
        mode = CheckoutMode.SUBSCRIPTION if kind is CheckoutKind.TIER else CheckoutMode.PAYMENT
        page = await self._gateway.create_checkout(
            CheckoutRequest(
                reference=checkout.id,
                customer_id=customer.gateway_customer_id,
                mode=mode,
                price_id=item.gateway_price_id,
                success_url=self._policy.success_url,
                cancel_url=self._policy.cancel_url,
                site_url=site_url,
                amount=item.price,
                currency=item.currency,
                description=item.name,
                metadata={"user_id": str(user.id), "kind": kind.value, "code": code},
            ),
            idempotency_key=f"checkout:{checkout.id}",
        )
        async with self._uow() as tx:
            checkout = await tx.checkouts.update(
                checkout.copy(gateway_session_id=page.id, url=page.url)
            )
            await tx.commit()
        return checkout

    async def portal(self, user: User, *, site_url: str) -> str:
        """The URL of a customer portal session for the user."""
        customer = await self._customer(user)
        page = await self._gateway.create_portal(
            customer_id=customer.gateway_customer_id,
            return_url=self._policy.portal_return_url,
            site_url=site_url,
        )
        return page.url

    async def subscription(self, user: User) -> SubscriptionView:
        assert user.id is not None
        async with self._uow(read_only=True) as tx:
            current = await tx.subscriptions.current(user.id) or await tx.subscriptions.latest(
                user.id
            )
        if current is None:
            return SubscriptionView(user.tier_code, "none", None, False)
        return SubscriptionView(
            tier=user.tier_code,
            status=current.status.value,
            current_period_end=current.current_period_end,
            cancel_at_period_end=current.cancel_at_period_end,
            scheduled_tier=current.scheduled_tier_code,
        )

    async def cancel(self, user: User, *, at_period_end: bool = True) -> Subscription:
        """Cancel the user's subscription at the end of the paid period, or now."""
        current = await self._current(user)
        read_at = self._clock.now()
        snapshot = await self._gateway.cancel_subscription(
            current.gateway_subscription_id,
            at_period_end=at_period_end,
            idempotency_key=f"cancel:{current.id}:{'end' if at_period_end else 'now'}",
        )
        return await self._apply(
            user, snapshot, read_at, PaymentAction.SUBSCRIPTION_CANCEL_REQUESTED, at_period_end
        )

    async def resume(self, user: User) -> Subscription:
        """Undo a cancellation at period end (before the period ends)."""
        current = await self._current(user)
        read_at = self._clock.now()
        snapshot = await self._gateway.resume_subscription(
            current.gateway_subscription_id,
            idempotency_key=f"resume:{current.id}:{read_at.timestamp():.0f}",
        )
        return await self._apply(user, snapshot, read_at, PaymentAction.SUBSCRIPTION_RESUMED, None)

    async def payments(self, user_id: int, page: PageRequest) -> Page[Payment]:
        async with self._uow(read_only=True) as tx:
            return await tx.payments.for_user(user_id, page)

    # --- internals --------------------------------------------------------------------

    async def _for_sale(self, user_id: int, kind: CheckoutKind, code: str) -> Tier | Product:
        item: Tier | Product | None
        async with self._uow(read_only=True) as tx:
            if kind is CheckoutKind.TIER:
                item = await tx.tiers.get(code)
                sellable = item is not None and item.public
                if await tx.subscriptions.current(user_id) is not None:
                    raise SubscriptionExistsError()
            else:
                item = product = await tx.products.get(code)
                sellable = (
                    product is not None
                    and product.active
                    and product.kind is ProductKind.CREDIT_PACK
                )
        if item is None or not sellable or item.gateway_price_id is None:
            raise NotForSaleError()
        return item

    async def _customer(self, user: User) -> Customer:
        assert user.id is not None
        async with self._uow(read_only=True) as tx:
            existing = await tx.customers.get(user.id)
        if existing is not None:
            return existing
        customer_id = await self._gateway.create_customer(
            user_id=user.id, email=str(user.email), idempotency_key=f"customer:{user.id}"
        )
        try:
            async with self._uow() as tx:
                customer = await tx.customers.add(
                    Customer(user.id, customer_id, created_at=self._clock.now())
                )
                await tx.commit()
        except CustomerExistsError:
            async with self._uow(read_only=True) as tx:
                found = await tx.customers.get(user.id)
            assert found is not None
            return found
        return customer

    async def _current(self, user: User) -> Subscription:
        assert user.id is not None
        async with self._uow(read_only=True) as tx:
            current = await tx.subscriptions.current(user.id)
        if current is None:
            raise SubscriptionNotFoundError()
        return current

    async def _apply(
        self,
        user: User,
        snapshot: GatewaySubscription,
        read_at: datetime,
        action: PaymentAction,
        at_period_end: bool | None,
    ) -> Subscription:
        assert user.id is not None
        async with self._uow() as tx:
            result = await self._rules.apply(tx, snapshot, read_at=read_at, user_id=user.id)
            await tx.audit.record(
                payment_entry(
                    action,
                    now=self._clock.now(),
                    user_id=user.id,
                    actor_id=user.id,
                    at_period_end=at_period_end,
                )
            )
            stored = result.subscription or await tx.subscriptions.lock(snapshot.id)
            await tx.commit()
        await self._plans.forget_entitlements(user.id)
        assert stored is not None
        return stored

"""What a user is on: their tier, the products they bought, their enterprise terms."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from core.billing.auditing import BillingAction, billing_entry
from core.billing.entitlements import EntitlementCache
from core.billing.errors import ProductNotFoundError, PurchaseExistsError, TierNotFoundError
from core.billing.model import (
    EnterpriseOverride,
    LedgerEntry,
    LedgerReason,
    ProductKind,
    Purchase,
    PurchaseStatus,
)
from core.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory
from core.identity.accounts import AccountService
from core.identity.model import User
from core.platform.telemetry import CreditMovement, Telemetry
from core.shared.clock import Clock
from core.shared.context import NO_CLIENT, ClientInfo


@dataclass(frozen=True, slots=True)
class RecordedPurchase:
    """What `record_purchase_in` did: the purchase, whether it is new (False: the
    reference was recorded before, nothing written), and the credits it granted."""

    purchase: Purchase
    new: bool
    credits_granted: int = 0


class PlanService:
    """Rules:
    - A user's tier is identity's to keep (`User.tier_code`); billing decides it:
      `change_tier` checks the tier exists and asks identity to set it (audited there,
      the cached user forgotten).
    - A purchase is recorded once per `reference` (a checkout id, a ticket); a credit
      pack's credits are granted in the same transaction (ledger key
      `purchase:<reference>`), so a purchase and its credits exist together or not at
      all, however often it is recorded.
    - Purchases, their end, and enterprise overrides are audited in their transaction;
      after each commit the user's cached entitlements are forgotten.
    - The credits a purchase grants are reported (`Telemetry.credits_moved`) after the
      commit, by whoever commits.
    """

    def __init__(
        self,
        uow: BillingUnitOfWorkFactory,
        accounts: AccountService,
        cache: EntitlementCache,
        clock: Clock,
        telemetry: Telemetry,
    ) -> None:
        self._uow = uow
        self._accounts = accounts
        self._cache = cache
        self._clock = clock
        self._telemetry = telemetry

    async def change_tier(
        self,
        user_id: int,
        tier_code: str,
        *,
        actor_id: int | None = None,
        reason: str = "",
        client: ClientInfo = NO_CLIENT,
    ) -> User:
        async with self._uow(read_only=True) as tx:
            if await tx.tiers.get(tier_code) is None:
                raise TierNotFoundError()
        user = await self._accounts.set_tier(
            user_id, tier_code, actor_id=actor_id, reason=reason, client=client
        )
        await self._cache.forget_user(user_id)
        return user

    async def record_purchase(
        self,
        user_id: int,
        product_code: str,
        *,
        reference: str,
        quantity: int = 1,
        expires_at: datetime | None = None,
        actor_id: int | None = None,
    ) -> Purchase:
        """Record that the user bought the product (a credit pack's credits granted with
        it); the same reference again returns the first purchase and grants nothing."""
        async with self._uow() as tx:
            recorded = await self.record_purchase_in(
                tx,
                user_id,
                product_code,
                reference=reference,
                quantity=quantity,
                expires_at=expires_at,
                actor_id=actor_id,
            )
            if not recorded.new:
                return recorded.purchase
            try:
                await tx.commit()
            except PurchaseExistsError:
                pass  # recorded concurrently: that purchase stands
            else:
                self.report_granted(recorded)
                await self._cache.forget_user(user_id)
                return recorded.purchase
        async with self._uow(read_only=True) as tx:
            found = await tx.purchases.find(user_id, reference)
        assert found is not None
        return found

    async def record_purchase_in(
        self,
        tx: BillingUnitOfWork,
        user_id: int,
        product_code: str,
        *,
        reference: str,
        quantity: int = 1,
        expires_at: datetime | None = None,
        actor_id: int | None = None,
    ) -> RecordedPurchase:
        """`record_purchase` inside the caller's unit of work (the caller commits, then
        calls `report_granted` and `forget_entitlements`)."""
        existing = await tx.purchases.find(user_id, reference)
        if existing is not None:
            return RecordedPurchase(existing, new=False)
        product = await tx.products.get(product_code)
        if product is None:
            raise ProductNotFoundError()
        now = self._clock.now()
        purchase = await tx.purchases.add(
            Purchase(
                user_id=user_id,
                product_code=product_code,
                reference=reference,
                quantity=quantity,
                purchased_at=now,
                expires_at=expires_at,
            )
        )
        granted = product.credits * quantity if product.kind is ProductKind.CREDIT_PACK else 0
        if product.kind is ProductKind.CREDIT_PACK:
            await tx.credits.apply(
                LedgerEntry(
                    user_id,
                    granted,
                    LedgerReason.PURCHASE,
                    f"purchase:{reference}",
                    source=f"product:{product_code}",
                )
            )
        await tx.audit.record(
            billing_entry(
                BillingAction.PURCHASE_RECORDED,
                now=now,
                actor_id=actor_id,
                target_type="user",
                target_id=user_id,
                product=product_code,
                quantity=quantity,
                credits=product.credits * quantity or None,
            )
        )
        return RecordedPurchase(purchase, new=True, credits_granted=granted)

    def report_granted(self, recorded: RecordedPurchase) -> None:
        """Report the credits a committed purchase granted (none: nothing)."""
        if recorded.new and recorded.credits_granted > 0:
            self._telemetry.credits_moved(CreditMovement.GRANT, recorded.credits_granted)

    async def forget_entitlements(self, user_id: int) -> None:
        """Forget the user's cached entitlements (after a unit that changed them
        committed)."""
        await self._cache.forget_user(user_id)

    async def end_purchase(
        self,
        user_id: int,
        reference: str,
        status: PurchaseStatus = PurchaseStatus.CANCELED,
        *,
        actor_id: int | None = None,
    ) -> Purchase | None:
        """End an add-on (canceled or refunded); None when there is no such purchase."""
        now = self._clock.now()
        async with self._uow() as tx:
            purchase = await tx.purchases.find(user_id, reference)
            if purchase is None:
                return None
            if purchase.status is status:
                return purchase
            ended = await tx.purchases.update(replace(purchase, status=status))
            await tx.audit.record(
                billing_entry(
                    BillingAction.PURCHASE_ENDED,
                    now=now,
                    actor_id=actor_id,
                    target_type="user",
                    target_id=user_id,
                    product=purchase.product_code,
                    status=status.value,
                )
            )
            await tx.commit()
        await self._cache.forget_user(user_id)
        return ended

    async def active_purchases(self, user_id: int) -> list[Purchase]:
        async with self._uow(read_only=True) as tx:
            return await tx.purchases.list_active(user_id, self._clock.now())

    async def override(self, user_id: int) -> EnterpriseOverride | None:
        async with self._uow(read_only=True) as tx:
            return await tx.overrides.get(user_id)

    async def set_override(
        self, override: EnterpriseOverride, *, actor_id: int | None = None
    ) -> EnterpriseOverride:
        async with self._uow() as tx:
            saved = await tx.overrides.save(override)
            await tx.audit.record(
                billing_entry(
                    BillingAction.OVERRIDE_SET,
                    now=self._clock.now(),
                    actor_id=actor_id,
                    target_type="user",
                    target_id=override.user_id,
                    features=len(override.features),
                    limits=len(override.limits),
                )
            )
            await tx.commit()
        await self._cache.forget_user(override.user_id)
        return saved

    async def remove_override(self, user_id: int, *, actor_id: int | None = None) -> bool:
        async with self._uow() as tx:
            removed = await tx.overrides.delete(user_id)
            if removed:
                await tx.audit.record(
                    billing_entry(
                        BillingAction.OVERRIDE_REMOVED,
                        now=self._clock.now(),
                        actor_id=actor_id,
                        target_type="user",
                        target_id=user_id,
                    )
                )
                await tx.commit()
        if removed:
            await self._cache.forget_user(user_id)
        return removed

"""Billing: tiers and products (edited through `CatalogService`), enterprise overrides,
purchases, the credit ledger and usage counters (read-only).

Products are edited through `CatalogService.update_product` (their scalar fields).
Enterprise overrides have a service (`PlanService.set_override`), but they are
structured (features, limits) and SQLAdmin's generated forms cannot check them against
the core's rules: they stay read-only here, set through the CLI or the API.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from adapters.sqlalchemy.records_billing import (
    EnterpriseOverrideRecord,
    ProductRecord,
    TierRecord,
    UserProductRecord,
)
from adapters.sqlalchemy.records_credits import LedgerEntryRecord, UsageCounterRecord
from core.billing.catalog import CatalogService
from entrypoints.admin.context import actor_id
from entrypoints.admin.views.base import ReadOnlyView, identity


@identity("tiers")
class TierView(ReadOnlyView, model=TierRecord):
    name = "Tier"
    name_plural = "Tiers"
    icon = "fa-solid fa-layer-group"
    category = "Billing"
    can_edit = True
    column_list = "__all__"
    column_default_sort = [(TierRecord.rank, False)]
    # What an operator may change here; code, currency, features and limits stay as seeded.
    form_columns = [
        TierRecord.name,
        TierRecord.price,
        TierRecord.public,
        TierRecord.rank,
        TierRecord.gateway_price_id,
    ]

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Through `CatalogService.update_tier`: its checks, the entitlement cache's
        invalidation and its audit entry (`billing.tier_updated`) with the operator."""
        catalog = self.context().get(CatalogService)
        current = await catalog.tier(pk)
        gateway_price_id = (data.get("gateway_price_id") or "").strip() or None
        changed = current.copy(
            name=str(data.get("name", current.name)),
            price=int(data.get("price", current.price)),
            public=bool(data.get("public", current.public)),
            rank=int(data.get("rank", current.rank)),
            gateway_price_id=gateway_price_id,
        )
        await catalog.update_tier(changed, actor_id=actor_id(request))
        async with self.session_maker() as session:
            return await session.get(TierRecord, pk)


@identity("products")
class ProductView(ReadOnlyView, model=ProductRecord):
    name = "Product"
    name_plural = "Products"
    icon = "fa-solid fa-box"
    category = "Billing"
    can_edit = True
    column_list = "__all__"
    # Code, kind, currency, features and boosts stay as seeded.
    form_columns = [
        ProductRecord.name,
        ProductRecord.price,
        ProductRecord.credits,
        ProductRecord.active,
        ProductRecord.gateway_price_id,
    ]

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Through `CatalogService.update_product` (its checks: a credit pack grants
        credits; the catalog cache forgotten; `billing.product_updated` audited)."""
        catalog = self.context().get(CatalogService)
        current = await catalog.product(pk)
        changed = current.copy(
            name=str(data.get("name", current.name)),
            price=int(data.get("price", current.price)),
            credits=int(data.get("credits", current.credits)),
            active=bool(data.get("active", current.active)),
            gateway_price_id=(data.get("gateway_price_id") or "").strip() or None,
        )
        await catalog.update_product(changed, actor_id=actor_id(request))
        async with self.session_maker() as session:
            return await session.get(ProductRecord, pk)


@identity("overrides")
class EnterpriseOverrideView(ReadOnlyView, model=EnterpriseOverrideRecord):
    name = "Enterprise override"
    name_plural = "Enterprise overrides"
    icon = "fa-solid fa-building"
    category = "Billing"
    column_list = "__all__"


@identity("purchases")
class PurchaseView(ReadOnlyView, model=UserProductRecord):
    name = "Purchase"
    name_plural = "Purchases"
    icon = "fa-solid fa-cart-shopping"
    category = "Billing"
    column_list = "__all__"
    column_default_sort = [(UserProductRecord.id, True)]


@identity("ledger")
class LedgerView(ReadOnlyView, model=LedgerEntryRecord):
    """Read-only: adjustments go through a user's page (one entry, one audit record)."""

    name = "Ledger entry"
    name_plural = "Credit ledger"
    icon = "fa-solid fa-coins"
    category = "Billing"
    column_list = [
        LedgerEntryRecord.id,
        LedgerEntryRecord.user_id,
        LedgerEntryRecord.delta,
        LedgerEntryRecord.balance_after,
        LedgerEntryRecord.reason,
        LedgerEntryRecord.source,
        LedgerEntryRecord.note,
        LedgerEntryRecord.created_at,
    ]
    column_searchable_list = [LedgerEntryRecord.source, LedgerEntryRecord.note]
    column_default_sort = [(LedgerEntryRecord.id, True)]


@identity("usage")
class UsageView(ReadOnlyView, model=UsageCounterRecord):
    name = "Usage counter"
    name_plural = "Usage"
    icon = "fa-solid fa-gauge"
    category = "Billing"
    column_list = "__all__"

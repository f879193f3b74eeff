"""Entitlement resolvers: each business model adds what it grants, in turn.

`EntitlementService` folds the resolvers, in the order the composition root lists them
(`services.COLLECTIONS`), over an empty `Entitlements` of the user's tier. A resolver
reads what it needs in the read-only billing unit it is given and returns the
entitlements with its grant added.

Two kinds:
- `cacheable` resolvers (tier, products, enterprise overrides) grant features and
  limits; their result is cached per user, so whatever they read must forget the
  user's entitlements (or the catalog's) when it changes (`EntitlementCache`).
- live resolvers (credits) add facts read fresh on every `entitlements()` call; they
  must not grant features or limits (checks on the hot path skip them).

A new business model is one new class here (or anywhere) and one line in the list.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import ClassVar, Protocol

from core.billing.model import Entitlements, LimitSpec
from core.billing.ports import BillingUnitOfWork


class EntitlementResolver(Protocol):
    """Adds one business model's grant to `current` (see the module doc)."""

    cacheable: ClassVar[bool]

    @abstractmethod
    async def resolve(
        self, current: Entitlements, tx: BillingUnitOfWork, now: datetime
    ) -> Entitlements: ...


class EntitlementResolvers:
    """The resolvers, in the order they apply."""

    def __init__(self, resolvers: Sequence[EntitlementResolver]) -> None:
        self.cacheable = tuple(r for r in resolvers if r.cacheable)
        self.live = tuple(r for r in resolvers if not r.cacheable)


class TierResolver(EntitlementResolver):
    """The features and limits of the user's tier (an unknown tier grants nothing)."""

    cacheable = True

    async def resolve(
        self, current: Entitlements, tx: BillingUnitOfWork, now: datetime
    ) -> Entitlements:
        tier = await tx.tiers.get(current.tier)
        if tier is None:
            return current
        return current.with_features(tier.features).with_limits(tier.limits)


class ProductResolver(EntitlementResolver):
    """Active add-ons: their features, and their limit boosts added to the limits (a
    boost of a limit the tier does not have grants it, counted per day)."""

    cacheable = True

    async def resolve(
        self, current: Entitlements, tx: BillingUnitOfWork, now: datetime
    ) -> Entitlements:
        purchases = await tx.purchases.list_active(current.user_id, now)
        if not purchases:
            return current
        features = set(current.features)
        limits = dict(current.limits)
        for purchase in purchases:
            product = await tx.products.get(purchase.product_code)
            if product is None:
                continue
            features |= product.features
            for name, boost in product.limit_boosts.items():
                base = limits.get(name, LimitSpec(0))
                limits[name] = replace(base, amount=base.amount + boost * purchase.quantity)
        return replace(current, features=frozenset(features), limits=limits)


class EnterpriseResolver(EntitlementResolver):
    """A user's enterprise override: its features are added, its limits replace."""

    cacheable = True

    async def resolve(
        self, current: Entitlements, tx: BillingUnitOfWork, now: datetime
    ) -> Entitlements:
        override = await tx.overrides.get(current.user_id)
        if override is None:
            return current
        return current.with_features(override.features).with_limits(override.limits)


class CreditResolver(EntitlementResolver):
    """The credit balance, read from the database every time (never cached)."""

    cacheable = False

    async def resolve(
        self, current: Entitlements, tx: BillingUnitOfWork, now: datetime
    ) -> Entitlements:
        return replace(current, credits=await tx.credits.balance(current.user_id))

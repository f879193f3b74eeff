"""The catalog: tiers and products, created and changed by operators (the seed, the CLI,
the admin panel) and read by everyone."""

from __future__ import annotations

from core.audit.model import AuditEntry
from core.billing.auditing import BillingAction, billing_entry
from core.billing.entitlements import CATALOG_VERSION_KEY, EntitlementCache
from core.billing.errors import (
    ProductExistsError,
    ProductNotFoundError,
    TierExistsError,
    TierNotFoundError,
)
from core.billing.model import LimitSpec, Product, Tier
from core.billing.ports import BillingUnitOfWorkFactory
from core.platform.cache import JsonInput, JsonValue
from core.shared.clock import Clock
from core.shared.errors import DomainError

PUBLIC_TIERS_KEY = "billing:tiers:public"


class CatalogService:
    """Rules:
    - Tier and product codes are unique; `create_*` refuses a code that exists,
      `update_*` one that does not. `ensure_*` (the seed) creates what is missing and
      leaves what exists alone, so running it again changes nothing.
    - Every change is audited in its transaction and, once committed, forgets every
      cached entitlement and the cached public tier list, in every process sharing the
      cache.
    - The public tier list is served from the cache (one round trip when warm).
    """

    def __init__(
        self, uow: BillingUnitOfWorkFactory, cache: EntitlementCache, clock: Clock
    ) -> None:
        self._uow = uow
        self._cache = cache
        self._clock = clock

    async def public_tiers(self) -> list[Tier]:
        cached = await self._cache.entries.read(PUBLIC_TIERS_KEY, (CATALOG_VERSION_KEY,))
        if cached.hit:
            tiers = _decode_tiers(cached.value)
            if tiers is not None:
                return tiers
        async with self._uow(read_only=True) as tx:
            tiers = await tx.tiers.list(public_only=True)
        if cached.versions is not None:
            await self._cache.entries.store(
                PUBLIC_TIERS_KEY, [_encode_tier(t) for t in tiers], cached.versions
            )
        return tiers

    async def tiers(self) -> list[Tier]:
        async with self._uow(read_only=True) as tx:
            return await tx.tiers.list()

    async def tier(self, code: str) -> Tier:
        async with self._uow(read_only=True) as tx:
            tier = await tx.tiers.get(code)
        if tier is None:
            raise TierNotFoundError()
        return tier

    async def create_tier(self, tier: Tier, *, actor_id: int | None = None) -> Tier:
        async with self._uow() as tx:
            if await tx.tiers.get(tier.code) is not None:
                raise TierExistsError()
            stored = await tx.tiers.add(tier)
            await tx.audit.record(
                self._entry(BillingAction.TIER_CREATED, "tier", tier.code, actor_id)
            )
            await tx.commit()
        await self._cache.forget_catalog()
        return stored

    async def update_tier(self, tier: Tier, *, actor_id: int | None = None) -> Tier:
        async with self._uow() as tx:
            stored = await tx.tiers.update(tier)
            await tx.audit.record(
                self._entry(BillingAction.TIER_UPDATED, "tier", tier.code, actor_id)
            )
            await tx.commit()
        await self._cache.forget_catalog()
        return stored

    async def ensure_tier(self, tier: Tier) -> bool:
        """Create the tier unless its code exists; True when it was created."""
        try:
            await self.create_tier(tier)
        except TierExistsError:
            return False
        return True

    async def products(self, *, active_only: bool = False) -> list[Product]:
        async with self._uow(read_only=True) as tx:
            return await tx.products.list(active_only=active_only)

    async def product(self, code: str) -> Product:
        async with self._uow(read_only=True) as tx:
            product = await tx.products.get(code)
        if product is None:
            raise ProductNotFoundError()
        return product

    async def create_product(self, product: Product, *, actor_id: int | None = None) -> Product:
        async with self._uow() as tx:
            if await tx.products.get(product.code) is not None:
                raise ProductExistsError()
            stored = await tx.products.add(product)
            action = BillingAction.PRODUCT_CREATED
            await tx.audit.record(self._entry(action, "product", product.code, actor_id))
            await tx.commit()
        await self._cache.forget_catalog()
        return stored

    async def update_product(self, product: Product, *, actor_id: int | None = None) -> Product:
        async with self._uow() as tx:
            stored = await tx.products.update(product)
            action = BillingAction.PRODUCT_UPDATED
            await tx.audit.record(self._entry(action, "product", product.code, actor_id))
            await tx.commit()
        await self._cache.forget_catalog()
        return stored

    async def ensure_product(self, product: Product) -> bool:
        """Create the product unless its code exists; True when it was created."""
        try:
            await self.create_product(product)
        except ProductExistsError:
            return False
        return True

    def _entry(
        self, action: BillingAction, kind: str, code: str, actor_id: int | None
    ) -> AuditEntry:
        return billing_entry(
            action, now=self._clock.now(), actor_id=actor_id, target_type=kind, target_id=code
        )


def _encode_tier(tier: Tier) -> dict[str, JsonInput]:
    return {
        "code": tier.code,
        "name": tier.name,
        "price": tier.price,
        "currency": tier.currency,
        "features": sorted(tier.features),
        "limits": {n: [s.amount, s.period.value] for n, s in tier.limits.items()},
        "gateway_price_id": tier.gateway_price_id,
        "rank": tier.rank,
    }


def _decode_tiers(value: JsonValue) -> list[Tier] | None:
    if not isinstance(value, list):
        return None
    tiers = []
    try:
        for item in value:
            if not isinstance(item, dict):
                return None
            limits = item["limits"]
            features = item["features"]
            if not isinstance(limits, dict) or not isinstance(features, list):
                return None
            tiers.append(
                Tier(
                    code=str(item["code"]),
                    name=str(item["name"]),
                    price=int(item["price"]),  # type: ignore[arg-type]
                    currency=str(item["currency"]),
                    features=frozenset(str(f) for f in features),
                    limits={
                        str(n): LimitSpec(int(p[0]), p[1])  # type: ignore[arg-type, index]
                        for n, p in limits.items()
                    },
                    gateway_price_id=(
                        None if item["gateway_price_id"] is None else str(item["gateway_price_id"])
                    ),
                    public=True,
                    rank=int(item["rank"]),  # type: ignore[arg-type]
                )
            )
    except (KeyError, TypeError, ValueError, IndexError, DomainError):
        return None  # not what we store: rebuilt from the database
    return tiers

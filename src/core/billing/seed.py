"""The default catalog `portico seed` creates: three tiers and two credit packs.

Every tier has the `conversations` feature and the default model (`DEFAULT_MODEL`, the
scripted model of the embedded profile), and `messages` and `tokens` limits; free allows
50 messages a day, the others more. Prices are per month in micro-units of USD. The paid
tiers and the packs name gateway prices the fake gateway sells as they are; with
Stripe, name your account's prices with `portico catalog price`. Seeding
is idempotent: what exists (by code) is left as it is, so an operator's edits stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.billing.catalog import CatalogService
from core.billing.model import LimitSpec, Period, Product, ProductKind, Tier, model_feature

# The model conversations use unless they name another (PORTICO_LLM__DEFAULT_MODEL).
DEFAULT_MODEL = "portico-fake"
USD = 1_000_000

_BASE = frozenset({"conversations", model_feature(DEFAULT_MODEL)})

DEFAULT_TIERS = (
    Tier(
        code="free",
        name="Free",
        price=0,
        features=_BASE,
        limits={
            "messages": LimitSpec(50, Period.DAY),
            "tokens": LimitSpec(200_000, Period.MONTH),
        },
        rank=0,
    ),
    Tier(
        code="pro",
        name="Pro",
        price=20 * USD,
        features=_BASE | {"priority_support", "long_context"},
        limits={
            "messages": LimitSpec(1_000, Period.DAY),
            "tokens": LimitSpec(10_000_000, Period.MONTH),
        },
        gateway_price_id="price_pro_monthly",
        rank=1,
    ),
    Tier(
        code="enterprise",
        name="Enterprise",
        price=200 * USD,
        features=_BASE | {"priority_support", "long_context", "audit_export"},
        limits={
            "messages": LimitSpec(20_000, Period.DAY),
            "tokens": LimitSpec(200_000_000, Period.MONTH),
        },
        gateway_price_id="price_enterprise_monthly",
        rank=2,
    ),
)

DEFAULT_PRODUCTS = (
    Product(
        code="small",
        name="1,000 credits",
        kind=ProductKind.CREDIT_PACK,
        price=5 * USD,
        credits=1_000,
        gateway_price_id="price_credits_small",
    ),
    Product(
        code="large",
        name="10,000 credits",
        kind=ProductKind.CREDIT_PACK,
        price=40 * USD,
        credits=10_000,
        gateway_price_id="price_credits_large",
    ),
)


@dataclass(frozen=True, slots=True)
class SeedReport:
    created: tuple[str, ...]
    kept: tuple[str, ...]


async def seed_catalog(catalog: CatalogService) -> SeedReport:
    """Create the default tiers and products that do not exist yet."""
    created: list[str] = []
    kept: list[str] = []
    for tier in DEFAULT_TIERS:
        (created if await catalog.ensure_tier(tier) else kept).append(f"tier:{tier.code}")
    for product in DEFAULT_PRODUCTS:
        label = f"product:{product.code}"
        (created if await catalog.ensure_product(product) else kept).append(label)
    return SeedReport(tuple(created), tuple(kept))

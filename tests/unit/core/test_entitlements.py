"""Entitlements: each resolver, their combination, the refusals, exact usage counting, the
cache and its invalidation, and a new resolver added without touching the service."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from adapters.memory.cache import InMemoryCache
from adapters.memory.telemetry import InMemoryTelemetry
from core.billing.entitlements import EntitlementCache, EntitlementService
from core.billing.errors import FeatureNotInTierError, LimitReachedError
from core.billing.model import (
    EnterpriseOverride,
    Entitlements,
    LimitSpec,
    Period,
    Product,
    ProductKind,
    PurchaseStatus,
    Tier,
)
from core.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory
from core.billing.resolvers import EntitlementResolver, EntitlementResolvers, TierResolver
from tests.unit.core.billing_world import BillingWorld

BOOST = Product(
    code="booster",
    name="Booster",
    kind=ProductKind.ADD_ON,
    recurring=True,
    features=frozenset({"image_input"}),
    limit_boosts={"messages": 100},
)


@pytest.fixture
async def world() -> BillingWorld:
    world = await BillingWorld().seeded()
    await world.catalog.create_product(BOOST)
    return world


async def test_the_tier_grants_its_features_and_limits(world: BillingWorld) -> None:
    user = await world.member()
    granted = await world.entitlements.entitlements(user)
    assert granted.tier == "free"
    assert granted.features == {"conversations", "model:portico-fake"}
    assert granted.limits["messages"] == LimitSpec(50, Period.DAY)
    assert granted.credits == 0
    await world.entitlements.can_use(user, "conversations")
    with pytest.raises(FeatureNotInTierError) as refused:
        await world.entitlements.can_use(user, "priority_support")
    assert refused.value.reason == "feature_not_in_tier"
    assert refused.value.upgrade_hint == "https://app.example.com/pricing"


async def test_a_tier_change_goes_through_identity_and_takes_effect(world: BillingWorld) -> None:
    user = await world.member()
    assert user.id is not None
    await world.entitlements.entitlements(user)  # cached as free
    changed = await world.plans.change_tier(user.id, "pro", actor_id=None, reason="support")
    assert changed.tier_code == "pro"
    user = await world.reload(user)  # the cached user was forgotten
    assert user.tier_code == "pro"
    await world.entitlements.can_use(user, "priority_support")
    assert (await world.entitlements.entitlements(user)).limits["messages"].amount == 1000
    (entry,) = await world.audit(action="account.tier_changed")
    assert entry.details == {"previous": "free", "tier": "pro", "reason": "support"}


async def test_an_add_on_adds_features_and_raises_limits_while_active(
    world: BillingWorld,
) -> None:
    user = await world.member()
    assert user.id is not None
    await world.entitlements.entitlements(user)
    await world.plans.record_purchase(user.id, "booster", reference="order-1", quantity=2)
    granted = await world.entitlements.entitlements(user)
    assert "image_input" in granted.features
    assert granted.limits["messages"].amount == 50 + 2 * 100
    await world.plans.end_purchase(user.id, "order-1", PurchaseStatus.CANCELED)
    granted = await world.entitlements.entitlements(user)
    assert "image_input" not in granted.features
    assert granted.limits["messages"].amount == 50


async def test_an_expired_add_on_grants_nothing(world: BillingWorld) -> None:
    user = await world.member()
    assert user.id is not None
    ends = world.clock.now().replace(year=world.clock.now().year + 1)
    await world.plans.record_purchase(user.id, "booster", reference="sub-1", expires_at=ends)
    assert "image_input" in (await world.entitlements.entitlements(user)).features
    world.clock.advance((ends - world.clock.now()).total_seconds() + 1)
    await world.entitlements.forget(user.id)  # the cache's TTL is shorter in practice
    assert "image_input" not in (await world.entitlements.entitlements(user)).features


async def test_an_enterprise_override_adds_features_and_replaces_limits(
    world: BillingWorld,
) -> None:
    user = await world.member()
    assert user.id is not None
    await world.plans.record_purchase(user.id, "booster", reference="order-1")
    await world.plans.set_override(
        EnterpriseOverride(
            user.id,
            features=frozenset({"sso"}),
            limits={"messages": LimitSpec(5, Period.MONTH)},
            price_note="$1,000/month, invoiced",
        )
    )
    granted = await world.entitlements.entitlements(user)
    # tier + add-on + override: features add up, the override's limits win.
    assert granted.features >= {"conversations", "image_input", "sso"}
    assert granted.limits["messages"] == LimitSpec(5, Period.MONTH)
    assert granted.limits["tokens"].amount == 200_000  # untouched by the override
    assert [e.action for e in await world.audit(target_id=str(user.id))] >= ["billing.override_set"]
    assert await world.plans.remove_override(user.id)
    assert (await world.entitlements.entitlements(user)).limits["messages"].amount == 150


async def test_credits_are_read_fresh_every_time(world: BillingWorld) -> None:
    user = await world.member()
    assert user.id is not None
    assert (await world.entitlements.entitlements(user)).credits == 0
    await world.credits.grant(user.id, 70, idempotency_key="g")
    assert (await world.entitlements.entitlements(user)).credits == 70  # no forget needed


async def test_a_credit_pack_grants_its_credits_once_per_reference(world: BillingWorld) -> None:
    user = await world.member()
    assert user.id is not None
    first = await world.plans.record_purchase(user.id, "small", reference="cs_1")
    again = await world.plans.record_purchase(user.id, "small", reference="cs_1")
    assert again == first
    assert await world.credits.balance(user.id) == 1000
    await world.plans.record_purchase(user.id, "large", reference="cs_2")
    assert await world.credits.balance(user.id) == 11_000


# --- limits ------------------------------------------------------------------------------


async def test_consume_counts_exactly_under_concurrency(world: BillingWorld) -> None:
    user = await world.member()

    async def one() -> bool:
        try:
            await world.entitlements.consume(user, "messages")
        except LimitReachedError:
            return False
        return True

    outcomes = await asyncio.gather(*(one() for _ in range(100)))
    assert sum(outcomes) == 50
    with pytest.raises(LimitReachedError) as refused:
        await world.entitlements.check_limit(user, "messages")
    assert refused.value.reason == "limit_reached"
    assert (refused.value.limit, refused.value.remaining) == (50, 0)
    assert refused.value.resets_at == "2026-01-02T00:00:00+00:00"  # the next UTC day


async def test_check_limit_counts_nothing_and_a_new_period_starts_again(
    world: BillingWorld,
) -> None:
    user = await world.member()
    usage = await world.entitlements.check_limit(user, "messages", 50)
    assert (usage.used, usage.remaining) == (0, 50)
    await world.entitlements.consume(user, "messages", 50)
    with pytest.raises(LimitReachedError):
        await world.entitlements.consume(user, "messages")
    world.clock.advance(24 * 3600)
    assert (await world.entitlements.consume(user, "messages")).used == 1


async def test_a_limit_the_user_does_not_have_is_a_limit_of_zero(world: BillingWorld) -> None:
    user = await world.member()
    with pytest.raises(LimitReachedError) as refused:
        await world.entitlements.consume(user, "video_minutes")
    assert refused.value.limit == 0


async def test_usage_lists_every_limit_with_what_is_left(world: BillingWorld) -> None:
    user = await world.member()
    await world.entitlements.consume(user, "tokens", 1234)
    usage = {u.name: u for u in await world.entitlements.usage(user)}
    assert set(usage) == {"messages", "tokens"}
    assert (usage["tokens"].used, usage["tokens"].remaining) == (1234, 200_000 - 1234)
    assert usage["tokens"].resets_at == datetime(2026, 2, 1, tzinfo=UTC)


# --- the cache ---------------------------------------------------------------------------


class CountingUnits(BillingUnitOfWorkFactory):
    def __init__(self, inner: BillingUnitOfWorkFactory) -> None:
        self.inner = inner
        self.read_only_units = 0

    def __call__(self, *, read_only: bool = False) -> BillingUnitOfWork:
        self.read_only_units += read_only
        return self.inner(read_only=read_only)


def _service(world: BillingWorld, units: BillingUnitOfWorkFactory, **kw: Any) -> EntitlementService:
    return EntitlementService(
        units,
        kw.get("resolvers", world.services.get(EntitlementResolvers)),
        kw.get("cache", world.entitlements._cache),
        world.clock,
        world.entitlements._policy,
    )


async def test_a_warm_feature_check_reads_no_database(world: BillingWorld) -> None:
    user = await world.member()
    units = CountingUnits(world.billing_uow)
    service = _service(world, units)
    await service.can_use(user, "conversations")
    cold = units.read_only_units
    for _ in range(5):
        await service.can_use(user, "conversations")
    assert cold == 1 and units.read_only_units == cold  # the cache answered


async def test_the_overview_is_one_transaction_when_warm(world: BillingWorld) -> None:
    user = await world.member()
    await world.entitlements.consume(user, "messages", 7)
    await world.credits.grant(user.id or 0, 40, idempotency_key="g1", source="test")
    units = CountingUnits(world.billing_uow)
    service = _service(world, units)
    await service.can_use(user, "conversations")  # warms the cache
    before = units.read_only_units
    granted, usage = await service.overview(user)
    assert units.read_only_units == before + 1
    assert granted == await service.entitlements(user) and granted.credits == 40
    assert usage == await service.usage(user)
    assert {u.name: u.used for u in usage} == {"messages": 7, "tokens": 0}


async def test_admit_checks_features_then_limits_in_one_transaction(world: BillingWorld) -> None:
    user = await world.member()
    await world.entitlements.consume(user, "messages", 49)
    units = CountingUnits(world.billing_uow)
    service = _service(world, units)
    await service.can_use(user, "conversations")  # warms the cache
    before = units.read_only_units
    granted = await service.admit(
        user, features=("conversations",), limits={"messages": 1, "tokens": 200_000}
    )
    assert units.read_only_units == before + 1
    assert granted == await service.entitlements(user)
    with pytest.raises(FeatureNotInTierError):  # features first, even past a limit
        await service.admit(user, features=("audit_export",), limits={"messages": 2})
    with pytest.raises(LimitReachedError) as refused:
        await service.admit(user, features=("conversations",), limits={"messages": 2})
    assert (refused.value.limit, refused.value.remaining) == (50, 1)
    with pytest.raises(LimitReachedError):
        await service.admit(user, limits={"tokens": 200_001})
    assert {u.name: u.used for u in await service.usage(user)} == {"messages": 49, "tokens": 0}
    # What admit returned spares consume its cache read, and counts the same.
    assert (await service.consume(user, "messages", 1, granted=granted)).remaining == 0


async def test_catalog_changes_reach_every_cached_user(world: BillingWorld) -> None:
    user = await world.member()
    await world.entitlements.can_use(user, "conversations")  # cached
    free = await world.catalog.tier("free")
    await world.catalog.update_tier(free.copy(features=free.features | {"beta"}))
    await world.entitlements.can_use(user, "beta")
    assert [t.code for t in await world.catalog.public_tiers()] == ["free", "pro", "enterprise"]
    assert (
        "beta" in next(t for t in await world.catalog.public_tiers() if t.code == "free").features
    )


async def test_a_new_business_model_is_one_resolver(world: BillingWorld) -> None:
    class BetaProgramResolver(EntitlementResolver):
        cacheable: ClassVar[bool] = True

        async def resolve(
            self, current: Entitlements, tx: BillingUnitOfWork, now: datetime
        ) -> Entitlements:
            return current.with_features(frozenset({"beta_lab"}))

    user = await world.member()
    resolvers = EntitlementResolvers([TierResolver(), BetaProgramResolver()])
    own_cache = EntitlementCache(
        InMemoryCache(world.clock), world.entitlements._policy, InMemoryTelemetry()
    )
    service = _service(world, world.billing_uow, resolvers=resolvers, cache=own_cache)
    await service.can_use(user, "beta_lab")
    with pytest.raises(FeatureNotInTierError):
        await world.entitlements.can_use(user, "beta_lab")  # the configured fold lacks it


async def test_seeding_twice_creates_nothing_more(world: BillingWorld) -> None:
    from core.billing.seed import seed_catalog

    report = await seed_catalog(world.catalog)
    assert report.created == ()
    assert "tier:free" in report.kept and "product:large" in report.kept
    free = await world.catalog.tier("free")
    assert free.limits["messages"].amount >= 50 and "conversations" in free.features
    changed = free.copy(name="Free forever")
    await world.catalog.update_tier(changed)
    await seed_catalog(world.catalog)
    assert (await world.catalog.tier("free")).name == "Free forever"  # edits stay


async def test_tiers_are_validated(world: BillingWorld) -> None:
    from core.shared.errors import RuleViolationError

    with pytest.raises(RuleViolationError):
        Tier(code="Pro!", name="x")
    with pytest.raises(RuleViolationError):
        Tier(code="pro2", name="x", limits={"messages": LimitSpec(-1)})
    with pytest.raises(RuleViolationError):
        Product(code="p", name="p", kind=ProductKind.CREDIT_PACK, credits=0)

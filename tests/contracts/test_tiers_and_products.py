"""The `TierRepository` and `ProductRepository` contracts, through the billing unit of
work, on every adapter: in memory, SQLite (a file per test) and Postgres.

The two ports share most of their contract, so those clauses run once per port through
a small `Catalog` description; round-trips, ordering and filters are tested per port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.billing.errors import (
    ProductExistsError,
    ProductNotFoundError,
    TierExistsError,
    TierNotFoundError,
)
from core.billing.model import LimitSpec, Period, Product, ProductKind, Tier
from core.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory
from core.shared.errors import ConflictError

# Above 2**31: the price columns must hold 64-bit micro-units.
LARGE_PRICE = 5_000_000_000_000


def tier(code: str, **fields: Any) -> Tier:
    return Tier(code=code, name=fields.pop("name", code.title()), **fields)


def add_on(code: str, **fields: Any) -> Product:
    return Product(
        code=code, name=fields.pop("name", code.title()), kind=ProductKind.ADD_ON, **fields
    )


@dataclass(frozen=True)
class Catalog:
    """One of the two catalog ports, as the shared tests use it."""

    name: str
    repository: Callable[[BillingUnitOfWork], Any]
    make: Callable[..., Any]
    exists_error: type[Exception]
    not_found_error: type[Exception]


CATALOGS = [
    Catalog("tiers", lambda tx: tx.tiers, tier, TierExistsError, TierNotFoundError),
    Catalog("products", lambda tx: tx.products, add_on, ProductExistsError, ProductNotFoundError),
]


@pytest.fixture(params=CATALOGS, ids=lambda catalog: catalog.name)
def catalog(request: pytest.FixtureRequest) -> Catalog:
    return request.param  # type: ignore[no-any-return]


async def add(uow: BillingUnitOfWorkFactory, catalog: Catalog, *items: Any) -> list[Any]:
    async with uow() as tx:
        stored = [await catalog.repository(tx).add(item) for item in items]
        await tx.commit()
    return stored


async def update(uow: BillingUnitOfWorkFactory, catalog: Catalog, item: Any) -> Any:
    async with uow() as tx:
        stored = await catalog.repository(tx).update(item)
        await tx.commit()
    return stored


async def get(uow: BillingUnitOfWorkFactory, catalog: Catalog, code: str) -> Any:
    async with uow(read_only=True) as tx:
        return await catalog.repository(tx).get(code)


TIERS = CATALOGS[0]
PRODUCTS = CATALOGS[1]


# --- round trips -------------------------------------------------------------------------


async def test_a_tier_round_trips_every_field(billing_uow: BillingUnitOfWorkFactory) -> None:
    wanted = Tier(
        code="pro",
        name="Pro plan",
        price=LARGE_PRICE,
        currency="eur",
        features=frozenset({"conversations", "model_large", "export"}),
        limits={
            "messages": LimitSpec(500, Period.DAY),
            "tokens": LimitSpec(3_000_000_000, Period.MONTH),
            "uploads": LimitSpec(0),
        },
        gateway_price_id="price_pro_monthly",
        public=False,
        rank=7,
    )
    before = datetime.now(UTC) - timedelta(seconds=5)
    (stored,) = await add(billing_uow, TIERS, wanted)
    assert stored.created_at is not None and stored.created_at == stored.updated_at
    assert before < stored.created_at and stored.created_at.utcoffset() == timedelta(0)
    assert stored == wanted.copy(created_at=stored.created_at, updated_at=stored.updated_at)

    found = await get(billing_uow, TIERS, "pro")
    assert found == stored
    assert isinstance(found.features, frozenset)
    assert found.limits["tokens"] == LimitSpec(3_000_000_000, Period.MONTH)
    assert found.limits["tokens"].period is Period.MONTH
    assert found.limits["messages"].period is Period.DAY
    assert await get(billing_uow, TIERS, "team") is None


async def test_a_tier_without_features_limits_or_gateway_price_round_trips(
    billing_uow: BillingUnitOfWorkFactory,
) -> None:
    (stored,) = await add(billing_uow, TIERS, tier("free"))
    found = await get(billing_uow, TIERS, "free")
    assert found == stored
    assert (found.features, dict(found.limits), found.gateway_price_id) == (
        frozenset(),
        {},
        None,
    )
    assert (found.price, found.currency, found.public, found.rank) == (0, "usd", True, 0)


async def test_products_of_both_kinds_round_trip_every_field(
    billing_uow: BillingUnitOfWorkFactory,
) -> None:
    booster = Product(
        code="booster",
        name="Booster",
        kind=ProductKind.ADD_ON,
        price=LARGE_PRICE,
        currency="gbp",
        recurring=True,
        features=frozenset({"priority_queue", "export"}),
        limit_boosts={"messages": 200, "tokens": 4_000_000_000},
        gateway_price_id="price_booster",
        active=False,
    )
    pack = Product(
        code="large", name="Large pack", kind="credit_pack", price=9_000_000, credits=5_000
    )
    stored = await add(billing_uow, PRODUCTS, booster, pack)
    for wanted, saved in zip((booster, pack), stored, strict=True):
        assert saved.created_at is not None and saved.created_at == saved.updated_at
        assert saved == wanted.copy(created_at=saved.created_at, updated_at=saved.updated_at)
        found = await get(billing_uow, PRODUCTS, wanted.code)
        assert found == saved
        assert isinstance(found.features, frozenset)
    found_pack = await get(billing_uow, PRODUCTS, "large")
    assert found_pack.kind is ProductKind.CREDIT_PACK and found_pack.credits == 5_000
    assert found_pack.limit_boosts == {} and found_pack.gateway_price_id is None


async def test_changing_a_returned_item_changes_nothing_stored(
    billing_uow: BillingUnitOfWorkFactory,
) -> None:
    limits = {"messages": LimitSpec(50)}
    (stored,) = await add(billing_uow, TIERS, tier("free", limits=limits))
    limits["messages"] = LimitSpec(1)
    stored.limits["messages"] = LimitSpec(2)
    found = await get(billing_uow, TIERS, "free")
    found.limits["messages"] = LimitSpec(3)
    assert (await get(billing_uow, TIERS, "free")).limits == {"messages": LimitSpec(50)}


# --- update ------------------------------------------------------------------------------


async def test_update_replaces_every_field_but_created_at(
    billing_uow: BillingUnitOfWorkFactory,
) -> None:
    (first,) = await add(
        billing_uow,
        TIERS,
        tier(
            "pro",
            price=10,
            features={"conversations", "export"},
            limits={"messages": LimitSpec(100), "tokens": LimitSpec(9, Period.MONTH)},
            gateway_price_id="price_old",
            rank=1,
        ),
    )
    changed = Tier(
        code="pro",
        name="Pro (2027)",
        price=LARGE_PRICE,
        currency="eur",
        features=frozenset({"conversations"}),
        limits={"messages": LimitSpec(7, Period.MONTH)},
        gateway_price_id=None,
        public=False,
        rank=4,
        created_at=datetime(2000, 1, 1, tzinfo=UTC),
    )
    updated = await update(billing_uow, TIERS, changed)
    assert updated.created_at == first.created_at
    assert updated.updated_at is not None and updated.updated_at > first.updated_at
    assert updated == changed.copy(created_at=first.created_at, updated_at=updated.updated_at)
    # Features and limits are replaced, not merged.
    assert await get(billing_uow, TIERS, "pro") == updated


async def test_update_replaces_every_product_field_but_created_at(
    billing_uow: BillingUnitOfWorkFactory,
) -> None:
    (first,) = await add(
        billing_uow,
        PRODUCTS,
        add_on("booster", features={"export"}, limit_boosts={"messages": 5}),
    )
    changed = Product(
        code="booster",
        name="Booster II",
        kind=ProductKind.CREDIT_PACK,
        price=3,
        currency="eur",
        credits=77,
        gateway_price_id="price_b2",
        active=False,
    )
    updated = await update(billing_uow, PRODUCTS, changed)
    assert updated == changed.copy(created_at=first.created_at, updated_at=updated.updated_at)
    assert updated.updated_at > first.updated_at
    assert await get(billing_uow, PRODUCTS, "booster") == updated


async def test_update_of_an_unknown_code_is_refused_and_stores_nothing(
    billing_uow: BillingUnitOfWorkFactory, catalog: Catalog
) -> None:
    with pytest.raises(catalog.not_found_error):
        await update(billing_uow, catalog, catalog.make("ghost"))
    assert await get(billing_uow, catalog, "ghost") is None
    # Control: once it exists, the same update goes through.
    await add(billing_uow, catalog, catalog.make("ghost"))
    assert (await update(billing_uow, catalog, catalog.make("ghost", name="Seen"))).name == "Seen"


# --- list --------------------------------------------------------------------------------


async def test_tiers_are_listed_by_rank_then_code_and_public_only_hides_the_others(
    billing_uow: BillingUnitOfWorkFactory,
) -> None:
    await add(
        billing_uow,
        TIERS,
        tier("alpha", rank=5),
        tier("zeta", rank=0),
        tier("team", rank=2),
        tier("beta", rank=2, public=False),
        tier("internal", rank=0, public=False),
    )
    async with billing_uow(read_only=True) as tx:
        every = await tx.tiers.list()
        public = await tx.tiers.list(public_only=True)
    assert [t.code for t in every] == ["internal", "zeta", "beta", "team", "alpha"]
    assert [t.code for t in public] == ["zeta", "team", "alpha"]
    assert every[0] == await get(billing_uow, TIERS, "internal")


async def test_products_are_listed_by_code_and_active_only_hides_the_inactive(
    billing_uow: BillingUnitOfWorkFactory,
) -> None:
    await add(
        billing_uow,
        PRODUCTS,
        add_on("zoom"),
        add_on("archive", active=False),
        Product(code="small", name="Small", kind=ProductKind.CREDIT_PACK, credits=10),
        add_on("booster"),
        # Codes sort by their characters (`_` before letters), whatever the collation.
        add_on("a_z"),
        add_on("ab"),
    )
    async with billing_uow(read_only=True) as tx:
        every = await tx.products.list()
        active = await tx.products.list(active_only=True)
    assert [p.code for p in every] == ["a_z", "ab", "archive", "booster", "small", "zoom"]
    assert [p.code for p in active] == ["a_z", "ab", "booster", "small", "zoom"]
    assert every[4] == await get(billing_uow, PRODUCTS, "small")


async def test_an_empty_catalog_lists_nothing(billing_uow: BillingUnitOfWorkFactory) -> None:
    async with billing_uow(read_only=True) as tx:
        assert await tx.tiers.list() == [] and await tx.products.list(active_only=True) == []


# --- uniqueness --------------------------------------------------------------------------


async def test_a_code_is_added_once(
    billing_uow: BillingUnitOfWorkFactory, catalog: Catalog
) -> None:
    await add(billing_uow, catalog, catalog.make("pro", name="First"))
    with pytest.raises(catalog.exists_error):
        await add(billing_uow, catalog, catalog.make("pro", name="Second"))
    # Also when the unit has just read the existing one.
    with pytest.raises(catalog.exists_error):
        async with billing_uow() as tx:
            assert await catalog.repository(tx).get("pro") is not None
            await catalog.repository(tx).add(catalog.make("pro", name="Third"))
    assert (await get(billing_uow, catalog, "pro")).name == "First"
    # Control: another code goes in.
    await add(billing_uow, catalog, catalog.make("plus"))


async def test_concurrent_adds_of_one_code_let_exactly_one_win(
    billing_uow: BillingUnitOfWorkFactory, catalog: Catalog
) -> None:
    async def attempt(n: int) -> bool:
        try:
            async with billing_uow() as tx:
                await catalog.repository(tx).add(catalog.make("pro", name=f"Try {n}"))
                await asyncio.sleep(0.02)  # overlap the attempts
                await tx.commit()
        except catalog.exists_error:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(4)))
    assert results.count(True) == 1
    assert (await get(billing_uow, catalog, "pro")).name == f"Try {results.index(True)}"


async def test_a_gateway_price_id_names_one_item(
    billing_uow: BillingUnitOfWorkFactory, catalog: Catalog
) -> None:
    await add(
        billing_uow,
        catalog,
        catalog.make("pro", gateway_price_id="price_1"),
        # No gateway price is no conflict, however many have none.
        catalog.make("free"),
        catalog.make("trial"),
    )
    with pytest.raises(ConflictError) as refused:
        await add(billing_uow, catalog, catalog.make("team", gateway_price_id="price_1"))
    assert not isinstance(refused.value, catalog.exists_error)
    assert await get(billing_uow, catalog, "team") is None
    await add(billing_uow, catalog, catalog.make("team", gateway_price_id="price_2"))
    with pytest.raises(ConflictError):
        await update(billing_uow, catalog, catalog.make("team", gateway_price_id="price_1"))
    assert (await get(billing_uow, catalog, "team")).gateway_price_id == "price_2"
    # Control: an item keeps its own price id through an update.
    renamed = await update(billing_uow, catalog, catalog.make("pro", gateway_price_id="price_1"))
    assert renamed.gateway_price_id == "price_1"


async def test_concurrent_adds_of_one_gateway_price_id_let_exactly_one_win(
    billing_uow: BillingUnitOfWorkFactory, catalog: Catalog
) -> None:
    async def attempt(n: int) -> bool:
        try:
            async with billing_uow() as tx:
                await catalog.repository(tx).add(
                    catalog.make(f"item_{n}", gateway_price_id="price_shared")
                )
                await asyncio.sleep(0.02)
                await tx.commit()
        except ConflictError:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(3)))
    assert results.count(True) == 1
    for n, won in enumerate(results):
        assert (await get(billing_uow, catalog, f"item_{n}") is not None) is won


# --- transactions ------------------------------------------------------------------------


async def test_nothing_is_stored_before_commit(
    billing_uow: BillingUnitOfWorkFactory, catalog: Catalog
) -> None:
    async with billing_uow() as tx:
        await catalog.repository(tx).add(catalog.make("pro"))
        # Visible inside the unit that wrote it...
        assert await catalog.repository(tx).get("pro") is not None
        assert [item.code for item in await catalog.repository(tx).list()] == ["pro"]
    # ...and gone with its rollback.
    assert await get(billing_uow, catalog, "pro") is None
    async with billing_uow() as tx:
        await catalog.repository(tx).add(catalog.make("pro"))
        await tx.rollback()
        # The unit goes on after a rollback, without the discarded change.
        assert await catalog.repository(tx).get("pro") is None
        await catalog.repository(tx).add(catalog.make("plus"))
        await tx.commit()
    assert await get(billing_uow, catalog, "pro") is None
    assert await get(billing_uow, catalog, "plus") is not None


async def test_a_rolled_back_update_leaves_the_committed_item(
    billing_uow: BillingUnitOfWorkFactory, catalog: Catalog
) -> None:
    (stored,) = await add(billing_uow, catalog, catalog.make("pro", name="Kept"))
    async with billing_uow() as tx:
        changed = await catalog.repository(tx).update(catalog.make("pro", name="Dropped"))
        assert (await catalog.repository(tx).get("pro")) == changed
    assert await get(billing_uow, catalog, "pro") == stored

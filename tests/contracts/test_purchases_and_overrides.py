"""The `PurchaseRepository` and `OverrideRepository` contracts, through the billing unit
of work, on every adapter: in memory, SQLite (a file per test) and Postgres."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from core.billing.errors import (
    ProductNotFoundError,
    PurchaseExistsError,
    PurchaseNotFoundError,
)
from core.billing.model import (
    EnterpriseOverride,
    LimitSpec,
    Period,
    Product,
    ProductKind,
    Purchase,
    PurchaseStatus,
)
from core.billing.ports import BillingUnitOfWorkFactory
from core.identity.errors import UserNotFoundError
from core.identity.model import Email, User, Username
from core.identity.ports import IdentityUnitOfWorkFactory

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def add_users(uow: BillingUnitOfWorkFactory, count: int) -> list[int]:
    """Store `count` users (purchases and overrides point at them); their ids."""
    # Both adapters' units serve every context: the billing unit reaches `users` too.
    async with cast(IdentityUnitOfWorkFactory, uow)() as tx:
        users = [
            await tx.users.add(
                User(
                    email=Email(f"buyer{n}@example.com"),
                    username=Username(f"buyer{n}"),
                    password_hash="h",
                )
            )
            for n in range(1, count + 1)
        ]
        await tx.commit()
    return [user.id for user in users if user.id is not None]


async def add_products(uow: BillingUnitOfWorkFactory, *codes: str) -> None:
    async with uow() as tx:
        for code in codes:
            await tx.products.add(Product(code=code, name=code, kind=ProductKind.ADD_ON))
        await tx.commit()


@pytest.fixture
async def buyers(billing_uow: BillingUnitOfWorkFactory) -> list[int]:
    """Two users, and the products `booster` and `archive` for them to buy."""
    await add_products(billing_uow, "booster", "archive")
    return await add_users(billing_uow, 2)


def purchase(user_id: int, reference: str = "cs_1", **fields: Any) -> Purchase:
    fields.setdefault("product_code", "booster")
    fields.setdefault("purchased_at", NOW)
    return Purchase(user_id=user_id, reference=reference, **fields)


async def store(uow: BillingUnitOfWorkFactory, *purchases: Purchase) -> list[Purchase]:
    async with uow() as tx:
        stored = [await tx.purchases.add(item) for item in purchases]
        await tx.commit()
    return stored


async def find(uow: BillingUnitOfWorkFactory, user_id: int, reference: str) -> Purchase | None:
    async with uow(read_only=True) as tx:
        return await tx.purchases.find(user_id, reference)


async def active(uow: BillingUnitOfWorkFactory, user_id: int, now: datetime) -> list[str]:
    async with uow(read_only=True) as tx:
        return [p.reference for p in await tx.purchases.list_active(user_id, now)]


# --- purchases ---------------------------------------------------------------------------


async def test_add_assigns_an_id_and_find_returns_every_field(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice, bob = buyers
    wanted = purchase(
        alice,
        "cs_live_a1",
        product_code="archive",
        quantity=3,
        status=PurchaseStatus.CANCELED,
        purchased_at=NOW - timedelta(days=3),
        expires_at=NOW + timedelta(days=27, microseconds=5),
    )
    (stored,) = await store(billing_uow, wanted)
    assert stored.id is not None
    assert stored == Purchase(**{**_fields(wanted), "id": stored.id})
    found = await find(billing_uow, alice, "cs_live_a1")
    assert found == stored
    assert found.status is PurchaseStatus.CANCELED
    assert found.expires_at.utcoffset() == timedelta(0)  # type: ignore[union-attr]
    # By user and reference: another user's, or another reference, is nothing.
    assert await find(billing_uow, bob, "cs_live_a1") is None
    assert await find(billing_uow, alice, "cs_live_a2") is None


def _fields(item: Purchase) -> dict[str, Any]:
    return {name: getattr(item, name) for name in Purchase.__dataclass_fields__}


async def test_add_stamps_the_purchase_time_when_none_is_given(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    (stored,) = await store(billing_uow, purchase(buyers[0], purchased_at=None))
    assert stored.purchased_at is not None and before < stored.purchased_at
    assert stored.expires_at is None and stored.status is PurchaseStatus.ACTIVE
    assert await find(billing_uow, buyers[0], "cs_1") == stored


async def test_ids_differ_and_a_reference_is_unique_per_user_only(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice, bob = buyers
    first, second = await store(billing_uow, purchase(alice, "ref"), purchase(bob, "ref"))
    assert first.id != second.id
    with pytest.raises(PurchaseExistsError):
        await store(billing_uow, purchase(alice, "ref", product_code="archive"))
    assert (await find(billing_uow, alice, "ref")).product_code == "booster"  # type: ignore[union-attr]
    # Within one unit too.
    with pytest.raises(PurchaseExistsError):
        await store(billing_uow, purchase(alice, "twice"), purchase(alice, "twice"))
    assert await find(billing_uow, alice, "twice") is None


async def test_concurrent_adds_of_one_reference_record_it_once(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice = buyers[0]

    async def attempt(quantity: int) -> bool:
        try:
            async with billing_uow() as tx:
                await tx.purchases.add(purchase(alice, "cs_retry", quantity=quantity))
                await asyncio.sleep(0.02)  # overlap the attempts
                await tx.commit()
        except PurchaseExistsError:
            return False
        return True

    results = await asyncio.gather(*(attempt(q) for q in (1, 2, 3, 4)))
    assert results.count(True) == 1
    found = await find(billing_uow, alice, "cs_retry")
    assert found is not None and found.quantity == results.index(True) + 1


async def test_list_active_returns_the_users_active_purchases_oldest_first(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice, bob = buyers
    day = timedelta(days=1)
    await store(
        billing_uow,
        purchase(alice, "later", purchased_at=NOW - day, expires_at=NOW + day),
        purchase(alice, "forever", purchased_at=NOW - 5 * day),
        purchase(alice, "expired", purchased_at=NOW - 9 * day, expires_at=NOW - day),
        purchase(alice, "ends_now", purchased_at=NOW - 8 * day, expires_at=NOW),
        purchase(alice, "canceled", purchased_at=NOW - 7 * day, status="canceled"),
        purchase(alice, "refunded", purchased_at=NOW - 6 * day, status="refunded"),
        purchase(alice, "same_time", product_code="archive", purchased_at=NOW - day),
        purchase(bob, "bobs", purchased_at=NOW - 10 * day),
    )
    assert await active(billing_uow, alice, NOW) == ["forever", "later", "same_time"]
    # `now` decides expiry: earlier, the expired ones were active.
    assert await active(billing_uow, alice, NOW - 2 * day) == [
        "expired",
        "ends_now",
        "forever",
        "later",
        "same_time",
    ]
    assert await active(billing_uow, bob, NOW) == ["bobs"]
    assert await active(billing_uow, bob + 1000, NOW) == []


async def test_update_writes_status_and_expiry_only(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice = buyers[0]
    (stored,) = await store(billing_uow, purchase(alice, quantity=2))
    renewed = NOW + timedelta(days=30)
    async with billing_uow() as tx:
        changed = await tx.purchases.update(
            Purchase(
                id=stored.id,
                user_id=alice,
                product_code="archive",
                reference="other",
                quantity=9,
                purchased_at=NOW - timedelta(days=99),
                status=PurchaseStatus.REFUNDED,
                expires_at=renewed,
            )
        )
        await tx.commit()
    expected = Purchase(
        **{**_fields(stored), "status": PurchaseStatus.REFUNDED, "expires_at": renewed}
    )
    assert changed == expected
    assert await find(billing_uow, alice, "cs_1") == expected
    assert await active(billing_uow, alice, NOW) == []
    # And back: expiry can be cleared.
    async with billing_uow() as tx:
        await tx.purchases.update(
            Purchase(**{**_fields(stored), "status": "active", "expires_at": None})
        )
        await tx.commit()
    assert await find(billing_uow, alice, "cs_1") == stored


async def test_update_of_an_unknown_purchase_is_refused(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    (stored,) = await store(billing_uow, purchase(buyers[0]))
    assert stored.id is not None
    for unknown in (Purchase(**{**_fields(stored), "id": stored.id + 1000}), purchase(buyers[0])):
        with pytest.raises(PurchaseNotFoundError):
            async with billing_uow() as tx:
                await tx.purchases.update(
                    Purchase(**{**_fields(unknown), "status": PurchaseStatus.CANCELED})
                )
                await tx.commit()
    assert await find(billing_uow, buyers[0], "cs_1") == stored


async def test_a_purchase_needs_an_existing_user_and_product(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    with pytest.raises(UserNotFoundError):
        await store(billing_uow, purchase(424242))
    with pytest.raises(ProductNotFoundError):
        await store(billing_uow, purchase(buyers[0], product_code="nothing"))
    assert await find(billing_uow, buyers[0], "cs_1") is None
    # Control: the same purchase with a real user and product, the product added in the
    # same unit.
    async with billing_uow() as tx:
        await tx.products.add(Product(code="nothing", name="N", kind=ProductKind.ADD_ON))
        await tx.purchases.add(purchase(buyers[0], product_code="nothing"))
        await tx.commit()
    assert (await find(billing_uow, buyers[0], "cs_1")).product_code == "nothing"  # type: ignore[union-attr]


async def test_purchases_are_not_stored_before_commit(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice = buyers[0]
    async with billing_uow() as tx:
        added = await tx.purchases.add(purchase(alice))
        assert await tx.purchases.find(alice, "cs_1") == added
        assert [p.reference for p in await tx.purchases.list_active(alice, NOW)] == ["cs_1"]
    assert await find(billing_uow, alice, "cs_1") is None
    assert await active(billing_uow, alice, NOW) == []
    (stored,) = await store(billing_uow, purchase(alice))
    async with billing_uow() as tx:
        await tx.purchases.update(Purchase(**{**_fields(stored), "status": "canceled"}))
        await tx.purchases.add(purchase(alice, "cs_2"))
        await tx.rollback()
        # The unit goes on after a rollback, without the discarded changes.
        assert await tx.purchases.find(alice, "cs_1") == stored
        assert await tx.purchases.find(alice, "cs_2") is None
        await tx.commit()
    assert await find(billing_uow, alice, "cs_1") == stored
    assert await find(billing_uow, alice, "cs_2") is None


# --- enterprise overrides ----------------------------------------------------------------


async def get_override(uow: BillingUnitOfWorkFactory, user_id: int) -> EnterpriseOverride | None:
    async with uow(read_only=True) as tx:
        return await tx.overrides.get(user_id)


async def save_override(
    uow: BillingUnitOfWorkFactory, override: EnterpriseOverride
) -> EnterpriseOverride:
    async with uow() as tx:
        saved = await tx.overrides.save(override)
        await tx.commit()
    return saved


def override(user_id: int, **fields: Any) -> EnterpriseOverride:
    return EnterpriseOverride(user_id=user_id, **fields)


async def test_save_stores_every_field_and_stamps_the_time(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice, bob = buyers
    assert await get_override(billing_uow, alice) is None
    wanted = override(
        alice,
        features=frozenset({"sso", "audit_export"}),
        limits={
            "messages": LimitSpec(100_000, Period.DAY),
            "tokens": LimitSpec(5_000_000_000, Period.MONTH),
        },
        price_note="Contract 2026-114: 4 000 EUR / month, invoiced yearly.",
    )
    before = datetime.now(UTC) - timedelta(seconds=5)
    saved = await save_override(billing_uow, wanted)
    assert saved.updated_at is not None and before < saved.updated_at
    assert saved.updated_at.utcoffset() == timedelta(0)
    found = await get_override(billing_uow, alice)
    assert found == saved
    assert EnterpriseOverride(**{**_override_fields(found), "updated_at": None}) == wanted
    assert isinstance(found.features, frozenset)
    assert found.limits["tokens"].period is Period.MONTH
    assert await get_override(billing_uow, bob) is None


def _override_fields(item: EnterpriseOverride) -> dict[str, Any]:
    return {name: getattr(item, name) for name in EnterpriseOverride.__dataclass_fields__}


async def test_saving_again_replaces_the_override(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice = buyers[0]
    first = await save_override(
        billing_uow,
        override(alice, features={"sso", "export"}, limits={"messages": LimitSpec(9)}),
    )
    again = await save_override(
        billing_uow, override(alice, features={"export"}, price_note="renegotiated")
    )
    assert again.updated_at > first.updated_at  # type: ignore[operator]
    found = await get_override(billing_uow, alice)
    assert found == again
    assert (found.features, dict(found.limits), found.price_note) == (
        frozenset({"export"}),
        {},
        "renegotiated",
    )


async def test_concurrent_saves_never_conflict_and_the_last_commit_wins(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice = buyers[0]
    variants = [override(alice, price_note=f"variant {n}") for n in range(4)]
    order: list[str] = []

    async def write(variant: EnterpriseOverride, pause: float) -> None:
        async with billing_uow() as tx:
            await tx.overrides.save(variant)
            await asyncio.sleep(pause)
            await tx.commit()
            order.append(variant.price_note)

    await asyncio.gather(*(write(v, 0.01 * (4 - n)) for n, v in enumerate(variants)))
    found = await get_override(billing_uow, alice)
    assert found is not None and found.price_note == order[-1]


async def test_delete_removes_the_override_and_says_whether_there_was_one(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice, bob = buyers
    await save_override(billing_uow, override(alice, features={"sso"}))
    await save_override(billing_uow, override(bob, features={"sso"}))
    async with billing_uow() as tx:
        assert await tx.overrides.delete(alice) is True
        assert await tx.overrides.get(alice) is None
        assert await tx.overrides.delete(alice) is False
        await tx.commit()
    assert await get_override(billing_uow, alice) is None
    assert await get_override(billing_uow, bob) is not None
    async with billing_uow() as tx:
        assert await tx.overrides.delete(alice) is False
        assert await tx.overrides.delete(424242) is False
        await tx.commit()
    # A deleted override can be saved anew, in the same unit as a delete too.
    async with billing_uow() as tx:
        assert await tx.overrides.delete(bob) is True
        await tx.overrides.save(override(bob, price_note="back"))
        await tx.commit()
    assert (await get_override(billing_uow, bob)).price_note == "back"  # type: ignore[union-attr]


async def test_override_changes_are_not_stored_before_commit(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    alice, bob = buyers
    async with billing_uow() as tx:
        saved = await tx.overrides.save(override(alice, features={"sso"}))
        assert await tx.overrides.get(alice) == saved
    assert await get_override(billing_uow, alice) is None
    kept = await save_override(billing_uow, override(bob, features={"sso"}))
    async with billing_uow() as tx:
        await tx.overrides.save(override(bob, price_note="dropped"))
        await tx.rollback()
        assert await tx.overrides.get(bob) == kept
        await tx.commit()
    async with billing_uow() as tx:
        assert await tx.overrides.delete(bob) is True
    assert await get_override(billing_uow, bob) == kept


async def test_an_override_needs_an_existing_user(
    billing_uow: BillingUnitOfWorkFactory, buyers: list[int]
) -> None:
    with pytest.raises(UserNotFoundError):
        await save_override(billing_uow, override(424242, features={"sso"}))
    assert await get_override(billing_uow, 424242) is None
    # Control: the same override for a real user.
    await save_override(billing_uow, override(buyers[0], features={"sso"}))
    assert await get_override(billing_uow, buyers[0]) is not None

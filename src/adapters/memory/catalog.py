"""The billing catalog (tiers and products) in process memory, transactional like the SQL
tables."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from adapters.memory.transaction import PendingWrites
from core.billing.errors import (
    ProductExistsError,
    ProductNotFoundError,
    TierExistsError,
    TierNotFoundError,
)
from core.billing.model import Product, Tier
from core.billing.ports import ProductRepository, TierRepository
from core.shared.errors import ConflictError, DomainError

ItemT = TypeVar("ItemT", Tier, Product)


def later_than(previous: datetime | None) -> datetime:
    """Now, or just after `previous`: two writes may share a microsecond in memory, and
    a change must still move `updated_at` forward, as the database round trip does."""
    now = datetime.now(UTC)
    if previous is not None and now <= previous:
        return previous + timedelta(microseconds=1)
    return now


@dataclass
class InMemoryCatalogState(Generic[ItemT]):
    """The committed tiers (or products) every unit of work of one database shares."""

    items: dict[str, ItemT] = field(default_factory=dict)


class InMemoryTierState(InMemoryCatalogState[Tier]):
    pass


class InMemoryProductState(InMemoryCatalogState[Product]):
    pass


class _PendingCatalog(PendingWrites, Generic[ItemT]):
    """Adds and updates of one unit of work over an `InMemoryCatalogState`, by code.

    Reads see the committed items overlaid with this unit's changes. The code (the
    primary key) and a non-null `gateway_price_id` (a unique column) are checked at the
    call against what this unit sees, and again at commit (`_check`) against what other
    units committed meanwhile. Items are frozen; their `limits`/`limit_boosts` dicts are
    rebuilt by `copy()` on the way in and out, so no caller shares the stored ones.
    """

    exists_error: Callable[[], DomainError]
    not_found_error: Callable[[], DomainError]
    what: str

    def __init__(self, state: InMemoryCatalogState[ItemT]) -> None:
        self._state: InMemoryCatalogState[ItemT] = state
        self._pending: dict[str, ItemT] = {}
        self._added: set[str] = set()

    def _visible(self) -> dict[str, ItemT]:
        return {**self._state.items, **self._pending}

    def _price_id_taken(self) -> DomainError:
        return ConflictError(f"Another {self.what} has this gateway price id.")

    def _check_price_id(self, item: ItemT, others: dict[str, ItemT]) -> None:
        if item.gateway_price_id is None:
            return
        if any(
            other.code != item.code and other.gateway_price_id == item.gateway_price_id
            for other in others.values()
        ):
            raise self._price_id_taken()

    async def get(self, code: str) -> ItemT | None:
        item = self._visible().get(code)
        return item.copy() if item is not None else None

    def _listed(self, keep: Callable[[ItemT], bool]) -> builtins.list[ItemT]:
        return [item.copy() for item in self._visible().values() if keep(item)]

    async def add(self, item: ItemT) -> ItemT:
        visible = self._visible()
        if item.code in visible:
            raise self.exists_error()
        now = datetime.now(UTC)
        stored = item.copy(created_at=now, updated_at=now)
        self._check_price_id(stored, visible)
        self._pending[stored.code] = stored
        self._added.add(stored.code)
        return stored.copy()

    async def update(self, item: ItemT) -> ItemT:
        visible = self._visible()
        current = visible.get(item.code)
        if current is None:
            raise self.not_found_error()
        stored = item.copy(created_at=current.created_at, updated_at=later_than(current.updated_at))
        self._check_price_id(stored, visible)
        self._pending[stored.code] = stored
        return stored.copy()

    def _check(self) -> None:
        """Raise the conflict a commit would hit: a code added by this unit that another
        committed meanwhile, or a gateway price id now used twice."""
        if any(code in self._state.items for code in self._added):
            raise self.exists_error()
        merged = {**self._state.items, **self._pending}
        for item in self._pending.values():
            self._check_price_id(item, merged)

    def _commit(self) -> None:
        self._state.items.update(self._pending)
        self._rollback()

    def _rollback(self) -> None:
        self._pending.clear()
        self._added.clear()


class InMemoryTierRepository(_PendingCatalog[Tier], TierRepository):
    """`TierRepository` over an `InMemoryTierState` (contract: the port)."""

    exists_error = TierExistsError
    not_found_error = TierNotFoundError
    what = "tier"

    async def list(self, *, public_only: bool = False) -> builtins.list[Tier]:
        tiers = self._listed(lambda tier: tier.public or not public_only)
        return sorted(tiers, key=lambda tier: (tier.rank, tier.code))


class InMemoryProductRepository(_PendingCatalog[Product], ProductRepository):
    """`ProductRepository` over an `InMemoryProductState` (contract: the port)."""

    exists_error = ProductExistsError
    not_found_error = ProductNotFoundError
    what = "product"

    async def list(self, *, active_only: bool = False) -> builtins.list[Product]:
        products = self._listed(lambda product: product.active or not active_only)
        return sorted(products, key=lambda product: product.code)

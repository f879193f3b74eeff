"""What users bought and their enterprise overrides, in process memory, transactional
like the SQL tables."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from adapters.memory.catalog import later_than
from adapters.memory.transaction import PendingWrites
from core.billing.errors import (
    ProductNotFoundError,
    PurchaseExistsError,
    PurchaseNotFoundError,
)
from core.billing.model import EnterpriseOverride, Purchase
from core.billing.ports import OverrideRepository, PurchaseRepository
from core.identity.errors import UserNotFoundError

Exists = Callable[[int], Awaitable[bool]]
ProductExists = Callable[[str], Awaitable[bool]]


@dataclass
class InMemoryPurchaseState:
    """The committed purchases every unit of work of one database shares."""

    purchases: dict[int, Purchase] = field(default_factory=dict)
    # Like a database sequence: ids are never reused, even after a rollback.
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _key(purchase: Purchase) -> tuple[int, str]:
    return purchase.user_id, purchase.reference


class InMemoryPurchaseRepository(PurchaseRepository, PendingWrites):
    """`PurchaseRepository` over an `InMemoryPurchaseState` (contract: the port).

    `(user_id, reference)` is checked at `add` against what this unit sees and again at
    commit against what others committed meanwhile (`_check`), as the unique constraint
    does in SQL. `user_exists` and `product_exists` ask the same unit of work and stand
    in for the foreign keys: an unknown user is `UserNotFoundError`, an unknown product
    `ProductNotFoundError`. `add` stamps `purchased_at` when it is None. Purchases are
    frozen with no mutable fields, so they are handed out as they are.
    """

    def __init__(
        self, state: InMemoryPurchaseState, user_exists: Exists, product_exists: ProductExists
    ) -> None:
        self._state = state
        self._user_exists = user_exists
        self._product_exists = product_exists
        self._pending: dict[int, Purchase] = {}
        self._added: set[int] = set()

    def _visible(self) -> dict[int, Purchase]:
        return {**self._state.purchases, **self._pending}

    async def add(self, purchase: Purchase) -> Purchase:
        if not await self._user_exists(purchase.user_id):
            raise UserNotFoundError()
        if not await self._product_exists(purchase.product_code):
            raise ProductNotFoundError()
        if any(_key(other) == _key(purchase) for other in self._visible().values()):
            raise PurchaseExistsError()
        stored = replace(
            purchase,
            id=next(self._state.ids),
            purchased_at=purchase.purchased_at or datetime.now(UTC),
        )
        assert stored.id is not None
        self._pending[stored.id] = stored
        self._added.add(stored.id)
        return stored

    async def find(self, user_id: int, reference: str) -> Purchase | None:
        return next((p for p in self._visible().values() if _key(p) == (user_id, reference)), None)

    async def list_active(self, user_id: int, now: datetime) -> list[Purchase]:
        active = [p for p in self._visible().values() if p.user_id == user_id and p.is_active(now)]
        return sorted(active, key=lambda p: (p.purchased_at, p.id))

    async def update(self, purchase: Purchase) -> Purchase:
        current = self._visible().get(purchase.id) if purchase.id is not None else None
        if current is None:
            raise PurchaseNotFoundError()
        stored = replace(current, status=purchase.status, expires_at=purchase.expires_at)
        assert stored.id is not None
        self._pending[stored.id] = stored
        return stored

    def _check(self) -> None:
        """Raise `PurchaseExistsError` if a purchase this unit adds lost its
        `(user_id, reference)` to one committed meanwhile."""
        committed = {_key(p) for p in self._state.purchases.values()}
        if any(_key(self._pending[pid]) in committed for pid in self._added):
            raise PurchaseExistsError()

    def _commit(self) -> None:
        # `update` only changes status and expiry, so the pending row is the committed
        # one with those two written: last commit wins, as for a SQL UPDATE.
        self._state.purchases.update(self._pending)
        self._rollback()

    def _rollback(self) -> None:
        self._pending.clear()
        self._added.clear()


@dataclass
class InMemoryOverrideState:
    """The committed enterprise overrides, by user id."""

    overrides: dict[int, EnterpriseOverride] = field(default_factory=dict)


class InMemoryOverrideRepository(OverrideRepository, PendingWrites):
    """`OverrideRepository` over an `InMemoryOverrideState` (contract: the port).

    Saves and deletes stay pending until commit and then replace whatever is committed
    (last commit wins, never a conflict). `user_exists` stands in for the foreign key:
    saving for an unknown user is `UserNotFoundError`. `save` stamps `updated_at`.
    Copies go in and out (`limits` is a dict).
    """

    def __init__(self, state: InMemoryOverrideState, user_exists: Exists) -> None:
        self._state = state
        self._user_exists = user_exists
        # None: deleted by this unit.
        self._pending: dict[int, EnterpriseOverride | None] = {}

    def _current(self, user_id: int) -> EnterpriseOverride | None:
        if user_id in self._pending:
            return self._pending[user_id]
        return self._state.overrides.get(user_id)

    async def get(self, user_id: int) -> EnterpriseOverride | None:
        current = self._current(user_id)
        return replace(current) if current is not None else None

    async def save(self, override: EnterpriseOverride) -> EnterpriseOverride:
        if not await self._user_exists(override.user_id):
            raise UserNotFoundError()
        previous = self._current(override.user_id)
        stored = replace(
            override,
            updated_at=later_than(previous.updated_at if previous is not None else None),
        )
        self._pending[override.user_id] = stored
        return replace(stored)

    async def delete(self, user_id: int) -> bool:
        if self._current(user_id) is None:
            return False
        self._pending[user_id] = None
        return True

    def _commit(self) -> None:
        for user_id, override in self._pending.items():
            if override is None:
                self._state.overrides.pop(user_id, None)
            else:
                self._state.overrides[user_id] = override
        self._pending.clear()

    def _rollback(self) -> None:
        self._pending.clear()

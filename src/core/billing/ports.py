"""What billing needs from the outside world.

Every repository here is used inside a `BillingUnitOfWork`; nothing is durable before
commit, and an audit entry or a job written in the same unit exists exactly when the
change it goes with commits. Driver failures raise `UnavailableError`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from core.audit.ports import AuditLog
from core.billing.model import (
    EnterpriseOverride,
    LedgerEntry,
    Product,
    Purchase,
    Reservation,
    ReservationStatus,
    Tier,
)
from core.platform.jobs import JobQueue
from core.shared.query import Page, PageRequest
from core.shared.unit_of_work import UnitOfWork


class TierRepository(Protocol):
    """The tiers, by code.

    - `add` stores a new tier (stamping `created_at`/`updated_at`) and raises
      `TierExistsError` for a code that exists (also when a concurrent add wins).
    - `update` replaces every field of the tier with this code but `created_at`, and
      raises `TierNotFoundError` for an unknown code.
    - `list` returns the tiers ordered by `rank`, then code; `public_only` leaves out
      the others.
    Features and limits round-trip exactly (sets of codes; `LimitSpec`s by name).
    """

    @abstractmethod
    async def get(self, code: str) -> Tier | None: ...

    @abstractmethod
    async def list(self, *, public_only: bool = False) -> list[Tier]: ...

    @abstractmethod
    async def add(self, tier: Tier) -> Tier: ...

    @abstractmethod
    async def update(self, tier: Tier) -> Tier: ...


class ProductRepository(Protocol):
    """The products, by code; the same contract as `TierRepository` (`ProductExistsError`,
    `ProductNotFoundError`); `list` orders by code, `active_only` leaves out the
    inactive ones."""

    @abstractmethod
    async def get(self, code: str) -> Product | None: ...

    @abstractmethod
    async def list(self, *, active_only: bool = False) -> list[Product]: ...

    @abstractmethod
    async def add(self, product: Product) -> Product: ...

    @abstractmethod
    async def update(self, product: Product) -> Product: ...


class PurchaseRepository(Protocol):
    """What users bought.

    - `add` stores a purchase (assigning `id`) and raises `PurchaseExistsError` when the
      user has one with this `reference` (also when a concurrent add wins), so a
      purchase is recorded once whatever retries happen.
    - `find(user_id, reference)`: that purchase, or None.
    - `list_active(user_id, now)`: the user's purchases active at `now`, oldest first.
    - `update` writes `status` and `expires_at` of the purchase with this id.
    """

    @abstractmethod
    async def add(self, purchase: Purchase) -> Purchase: ...

    @abstractmethod
    async def find(self, user_id: int, reference: str) -> Purchase | None: ...

    @abstractmethod
    async def list_active(self, user_id: int, now: datetime) -> list[Purchase]: ...

    @abstractmethod
    async def update(self, purchase: Purchase) -> Purchase: ...


class OverrideRepository(Protocol):
    """Enterprise overrides, at most one per user: `save` inserts or replaces it (the
    last commit wins), `delete` returns False when there was none."""

    @abstractmethod
    async def get(self, user_id: int) -> EnterpriseOverride | None: ...

    @abstractmethod
    async def save(self, override: EnterpriseOverride) -> EnterpriseOverride: ...

    @abstractmethod
    async def delete(self, user_id: int) -> bool: ...


class CreditLedger(Protocol):
    """Each user's credit balance and its append-only ledger.

    - `balance(user_id)`: the committed balance as this unit sees it (0 for a user
      who never had credits). Never cached.
    - `apply(entry)`: in one step, adds `entry.delta` to the user's balance if the
      result is not negative, and appends the entry with `balance_after` and
      `created_at` stamped; returns the stored entry, or None when the balance would go
      below zero (then nothing is written). The balance moves by a conditional update
      (`balance = balance + delta WHERE balance + delta >= 0`) over a CHECK constraint,
      so concurrent units can never overdraw, on any database; a unit applying to a
      user waits for another unit doing so until it ends (a row lock).
    - An `(user_id, idempotency_key)` pair is unique: `apply` with a key the user
      already has raises `IdempotencyKeyTakenError` (also when a concurrent unit wins
      at commit); callers look it up first with `find`.
    - `entries(user_id, page)`: newest first, cursor pagination (`PageRequest.cursor`),
      `Page.total` unset.
    - `total(user_id)`: the sum of every delta (equals `balance`: for checks).
    """

    @abstractmethod
    async def balance(self, user_id: int) -> int: ...

    @abstractmethod
    async def find(self, user_id: int, idempotency_key: str) -> LedgerEntry | None: ...

    @abstractmethod
    async def apply(self, entry: LedgerEntry) -> LedgerEntry | None: ...

    @abstractmethod
    async def entries(self, user_id: int, page: PageRequest) -> Page[LedgerEntry]: ...

    @abstractmethod
    async def total(self, user_id: int) -> int: ...


class ReservationRepository(Protocol):
    """Credit reservations (the credits themselves move through `CreditLedger`).

    - `add` stores a held reservation (assigning `id`, `created_at`) and raises
      `IdempotencyKeyTakenError` when the user has one with this key.
    - `get(id)`, `find(user_id, key)`: the reservation, or None.
    - `record_usage(id, usage)`: notes the cost while it is still held; False when it
      is closed or unknown.
    - `close(id, status, settled_amount, at)`: moves a held reservation to `status`
      (settled or released) in one conditional update, so of any number of concurrent
      closers exactly one gets the closed reservation back and the others None.
    - `expired(now, limit)`: held reservations whose `expires_at` has passed, oldest
      first.
    """

    @abstractmethod
    async def add(self, reservation: Reservation) -> Reservation: ...

    @abstractmethod
    async def get(self, reservation_id: int) -> Reservation | None: ...

    @abstractmethod
    async def find(self, user_id: int, idempotency_key: str) -> Reservation | None: ...

    @abstractmethod
    async def record_usage(self, reservation_id: int, usage: int) -> bool: ...

    @abstractmethod
    async def close(
        self,
        reservation_id: int,
        status: ReservationStatus,
        settled_amount: int,
        at: datetime,
    ) -> Reservation | None: ...

    @abstractmethod
    async def expired(self, now: datetime, limit: int) -> list[Reservation]: ...


class UsageCounters(Protocol):
    """How much of each limit a user used in a period (keyed by the period's start).

    - `used(user_id, name, period_start)`: 0 when nothing was counted.
    - `used_in(user_id, periods)`: `used` for each limit name -> period start of
      `periods`, in one read (every name present in the answer, 0 when none counted).
    - `consume(user_id, name, period_start, amount, limit)`: adds `amount` if the total
      stays within `limit`, in one atomic step (an upsert with a condition, or an atomic
      increment), and returns the new total; None when it would pass the limit (nothing
      counted). Exact under concurrency: of 100 concurrent `consume(..., 1, 50)`
      exactly 50 succeed.
    """

    @abstractmethod
    async def used(self, user_id: int, name: str, period_start: datetime) -> int: ...

    @abstractmethod
    async def used_in(self, user_id: int, periods: Mapping[str, datetime]) -> dict[str, int]: ...

    @abstractmethod
    async def consume(
        self, user_id: int, name: str, period_start: datetime, amount: int, limit: int
    ) -> int | None: ...


class BillingUnitOfWork(UnitOfWork, Protocol):
    """A transaction that can reach the billing repositories (and the audit trail and
    outbox, so money and privilege changes are audited and their jobs queued in the same
    transaction)."""

    tiers: TierRepository
    products: ProductRepository
    purchases: PurchaseRepository
    overrides: OverrideRepository
    credits: CreditLedger
    reservations: ReservationRepository
    usage: UsageCounters
    audit: AuditLog
    jobs: JobQueue


class BillingUnitOfWorkFactory(Protocol):
    """Opens a new `BillingUnitOfWork` per call (`read_only` as for identity)."""

    @abstractmethod
    def __call__(self, *, read_only: bool = False) -> BillingUnitOfWork: ...

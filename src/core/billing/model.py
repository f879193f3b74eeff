"""Billing entities and value objects: the catalog (tiers, products), what a user bought,
enterprise overrides, the credit ledger, and the entitlements they add up to.

Money is an integer of micro-units of `currency` (1 USD = 1_000_000); credits are plain
integers. Codes (tiers, products, features, limits) are short lowercase identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from core.shared.errors import RuleViolationError

_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
# Features may name things with their own punctuation: `model:gpt-4o-mini`.
# Up to 210 characters: `model:` and a model name of up to 200 (`core.conversations`).
_FEATURE = re.compile(r"[a-z][a-z0-9_.:/-]{0,209}\Z")
MAX_NAME_LENGTH = 200
MAX_REASON_LENGTH = 500
MAX_IDEMPOTENCY_KEY_LENGTH = 200


def check_code(value: str, what: str = "code") -> str:
    """`value` if it is a code: a lowercase letter, then letters, digits, `_` (max 64)."""
    if not isinstance(value, str) or not _CODE.match(value):
        raise RuleViolationError(f"A {what} is lowercase letters, digits and _.", field=what)
    return value


class Period(StrEnum):
    """How often a limit's usage starts again from zero (calendar periods in UTC)."""

    DAY = "day"
    MONTH = "month"

    def start(self, moment: datetime) -> datetime:
        """The start of the period `moment` falls in."""
        moment = moment.astimezone(UTC)
        if self is Period.DAY:
            return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
        return datetime(moment.year, moment.month, 1, tzinfo=UTC)

    def end(self, moment: datetime) -> datetime:
        """The start of the next period: when usage counted now resets."""
        start = self.start(moment)
        if self is Period.DAY:
            return start + timedelta(days=1)
        if start.month == 12:
            return start.replace(year=start.year + 1, month=1)
        return start.replace(month=start.month + 1)


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """At most `amount` units of `name` per `period` (e.g. 50 `messages` a `day`)."""

    amount: int
    period: Period = Period.DAY

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise RuleViolationError("A limit is a whole number, 0 or more.", field="limits")
        object.__setattr__(self, "period", Period(self.period))


def _check_limits(limits: Mapping[str, LimitSpec]) -> dict[str, LimitSpec]:
    return {check_code(name, "limit"): spec for name, spec in limits.items()}


def check_feature(value: str) -> str:
    """`value` if it is a feature: a lowercase letter, then letters, digits and `_.:/-`."""
    if not isinstance(value, str) or not _FEATURE.match(value):
        raise RuleViolationError(
            "A feature is lowercase letters, digits and _.:/-", field="feature"
        )
    return value


def model_feature(model: str) -> str:
    """The feature that lets a user call `model` (`model:<name>`)."""
    return check_feature(f"model:{model.lower()}")


def _check_features(features: frozenset[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
    return frozenset(check_feature(feature) for feature in features)


def _check_money(amount: int, what: str) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise RuleViolationError(f"A {what} is a whole number of micro-units, 0 or more.")
    return amount


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise RuleViolationError("A name has 1 to 200 characters.", field="name")
    return name


@dataclass(frozen=True, slots=True)
class Tier:
    """A plan every user is on exactly one of (`User.tier_code`).

    `price` is per month in micro-units of `currency`; `gateway_price_id` names the
    recurring price at the payment gateway (None: not sold there, e.g. `free`).
    `public` tiers are listed by `GET /api/v1/tiers`; `rank` orders them (an upgrade
    goes to a higher rank).
    """

    code: str
    name: str
    price: int = 0
    currency: str = "usd"
    features: frozenset[str] = frozenset()
    limits: Mapping[str, LimitSpec] = field(default_factory=dict)
    gateway_price_id: str | None = None
    public: bool = True
    rank: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        check_code(self.code, "tier")
        object.__setattr__(self, "name", _check_name(self.name))
        _check_money(self.price, "price")
        object.__setattr__(self, "features", _check_features(self.features))
        object.__setattr__(self, "limits", _check_limits(self.limits))

    def copy(self, **changes: object) -> Tier:
        return replace(self, **changes)  # type: ignore[arg-type]


class ProductKind(StrEnum):
    CREDIT_PACK = "credit_pack"  # grants `credits`
    ADD_ON = "add_on"  # grants `features` and raises limits by `limit_boosts`


@dataclass(frozen=True, slots=True)
class Product:
    """Something sold beside the tiers: a credit pack (one-time) or an add-on (one-time
    or `recurring`, each active purchase adding its features and limit boosts)."""

    code: str
    name: str
    kind: ProductKind
    price: int = 0
    currency: str = "usd"
    recurring: bool = False
    credits: int = 0
    features: frozenset[str] = frozenset()
    limit_boosts: Mapping[str, int] = field(default_factory=dict)
    gateway_price_id: str | None = None
    active: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        check_code(self.code, "product")
        object.__setattr__(self, "name", _check_name(self.name))
        object.__setattr__(self, "kind", ProductKind(self.kind))
        _check_money(self.price, "price")
        if isinstance(self.credits, bool) or self.credits < 0:
            raise RuleViolationError("Credits are a whole number, 0 or more.", field="credits")
        if self.kind is ProductKind.CREDIT_PACK and (self.credits == 0 or self.recurring):
            raise RuleViolationError("A credit pack grants credits, once.", field="credits")
        object.__setattr__(self, "features", _check_features(self.features))
        boosts = {check_code(name, "limit"): amount for name, amount in self.limit_boosts.items()}
        if any(isinstance(a, bool) or not isinstance(a, int) or a < 0 for a in boosts.values()):
            raise RuleViolationError("A limit boost is a whole number, 0 or more.")
        object.__setattr__(self, "limit_boosts", boosts)

    def copy(self, **changes: object) -> Product:
        return replace(self, **changes)  # type: ignore[arg-type]


class PurchaseStatus(StrEnum):
    ACTIVE = "active"
    CANCELED = "canceled"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class Purchase:
    """A product a user bought. Active while `status` is active and `expires_at` (the end
    of a recurring product's paid period; None: for good) has not passed. `reference`
    (unique per user) is what bought it: a checkout id, a support ticket."""

    user_id: int
    product_code: str
    reference: str
    quantity: int = 1
    status: PurchaseStatus = PurchaseStatus.ACTIVE
    purchased_at: datetime | None = None
    expires_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", PurchaseStatus(self.status))
        if self.quantity < 1:
            raise RuleViolationError("A quantity is at least 1.", field="quantity")

    def is_active(self, now: datetime) -> bool:
        return self.status is PurchaseStatus.ACTIVE and (
            self.expires_at is None or now < self.expires_at
        )


@dataclass(frozen=True, slots=True)
class EnterpriseOverride:
    """Per-user terms that win over the tier and products: extra `features`, and
    `limits` that replace the computed ones; `price_note` is for people (invoices are
    the gateway's)."""

    user_id: int
    features: frozenset[str] = frozenset()
    limits: Mapping[str, LimitSpec] = field(default_factory=dict)
    price_note: str = ""
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", _check_features(self.features))
        object.__setattr__(self, "limits", _check_limits(self.limits))
        if len(self.price_note) > 1000:
            raise RuleViolationError("A price note has at most 1000 characters.")


# --- credits ------------------------------------------------------------------------------


class LedgerReason(StrEnum):
    """Why the balance moved (one of these; `LedgerEntry.note` says more)."""

    GRANT = "grant"  # support staff, promotions
    PURCHASE = "purchase"  # a credit pack bought
    SPEND = "spend"
    RESERVE = "reserve"  # held for a call whose cost is not known yet
    SETTLE = "settle"  # the unused part of a reservation comes back
    RELEASE = "release"  # the whole reservation comes back
    REFUND = "refund"  # credits given back for a failed service
    REVERSAL = "reversal"  # credits taken back (a refunded payment)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One append-only movement of a user's balance.

    `delta` is signed; `balance_after` is the balance right after it (so a user's
    balance always equals the sum of their deltas). `idempotency_key` is unique per
    user: the same key again returns this entry and changes nothing. `source` names
    who or what moved it (`admin:7`, `stripe:cs_...`, `conversation:42`).
    """

    user_id: int
    delta: int
    reason: LedgerReason
    idempotency_key: str
    source: str = ""
    note: str = ""
    reservation_id: int | None = None
    balance_after: int | None = None
    created_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", LedgerReason(self.reason))
        if isinstance(self.delta, bool) or not isinstance(self.delta, int):
            raise RuleViolationError("A credit amount is a whole number.")
        check_idempotency_key(self.idempotency_key)
        if len(self.note) > MAX_REASON_LENGTH or len(self.source) > MAX_REASON_LENGTH:
            raise RuleViolationError("A note or source has at most 500 characters.")


def check_usage_amount(amount: int) -> int:
    """An amount to count against a limit: a whole number, 0 or more (counters only go
    up)."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise RuleViolationError("A usage amount is a whole number, 0 or more.", field="amount")
    return amount


def check_idempotency_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise RuleViolationError(
            "An idempotency key has 1 to 200 characters.", field="idempotency_key"
        )
    return key


class ReservationStatus(StrEnum):
    HELD = "held"
    SETTLED = "settled"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits held (taken from the balance) until the cost of a call is known.

    Closed exactly once: settled (the cost is kept, the rest given back) or released
    (all given back). `usage` is the cost recorded while it was held (by the caller,
    before settling): a reservation left behind by a crash is settled to it, or released
    when none was recorded.
    """

    user_id: int
    amount: int
    idempotency_key: str
    expires_at: datetime
    status: ReservationStatus = ReservationStatus.HELD
    usage: int | None = None
    settled_amount: int | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ReservationStatus(self.status))
        if isinstance(self.amount, bool) or self.amount < 1:
            raise RuleViolationError("A reservation holds at least 1 credit.", field="amount")
        check_idempotency_key(self.idempotency_key)


# --- entitlements ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entitlements:
    """What a user may do: features, and limits by name (None: no such limit, so the
    thing it would count is not granted at all). `credits` is the balance, read from
    the database whenever entitlements are asked for (never cached)."""

    user_id: int
    tier: str
    features: frozenset[str] = frozenset()
    limits: Mapping[str, LimitSpec] = field(default_factory=dict)
    credits: int = 0

    def with_features(self, features: frozenset[str]) -> Entitlements:
        return replace(self, features=self.features | features)

    def with_limits(self, limits: Mapping[str, LimitSpec]) -> Entitlements:
        return replace(self, limits={**self.limits, **limits})


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """A limit as a user stands against it now."""

    name: str
    limit: int
    used: int
    period: Period
    resets_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

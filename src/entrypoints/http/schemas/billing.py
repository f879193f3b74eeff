"""Plans, entitlements and credits as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.billing.model import Entitlements, LedgerEntry, LimitUsage, Tier
from core.shared.query import MAX_PAGE_SIZE


class TierLimitRead(BaseModel):
    limit: int = Field(description="Units per period.")
    period: str = Field(description="`day` or `month` (calendar, UTC).")


class TierRead(BaseModel):
    """A plan: its monthly price in micro-units of `currency` (1 USD = 1,000,000)."""

    code: str
    name: str
    price: int
    currency: str
    features: list[str]
    limits: dict[str, TierLimitRead]

    @classmethod
    def from_tier(cls, tier: Tier) -> TierRead:
        return cls(
            code=tier.code,
            name=tier.name,
            price=tier.price,
            currency=tier.currency,
            features=sorted(tier.features),
            limits={
                name: TierLimitRead(limit=spec.amount, period=spec.period.value)
                for name, spec in sorted(tier.limits.items())
            },
        )


class TierList(BaseModel):
    items: list[TierRead]


class LimitRead(BaseModel):
    limit: int
    used: int
    remaining: int
    resets_at: datetime = Field(description="When the period's usage starts again at zero.")

    @classmethod
    def from_usage(cls, usage: LimitUsage) -> LimitRead:
        return cls(
            limit=usage.limit, used=usage.used, remaining=usage.remaining, resets_at=usage.resets_at
        )


class EntitlementsRead(BaseModel):
    """What the caller may do now: the tier, every feature (tier, add-ons and enterprise
    terms together), every limit with its use in the current period, and the credits."""

    tier: str
    features: list[str]
    limits: dict[str, LimitRead]
    credits: int

    @classmethod
    def build(cls, granted: Entitlements, usage: list[LimitUsage]) -> EntitlementsRead:
        return cls(
            tier=granted.tier,
            features=sorted(granted.features),
            limits={u.name: LimitRead.from_usage(u) for u in usage},
            credits=granted.credits,
        )


class LedgerEntryRead(BaseModel):
    id: int
    delta: int = Field(description="Credits added (positive) or taken (negative).")
    balance_after: int
    reason: str
    source: str
    note: str
    created_at: datetime

    @classmethod
    def from_entry(cls, entry: LedgerEntry) -> LedgerEntryRead:
        assert entry.id is not None and entry.balance_after is not None
        assert entry.created_at is not None
        return cls(
            id=entry.id,
            delta=entry.delta,
            balance_after=entry.balance_after,
            reason=entry.reason.value,
            source=entry.source,
            note=entry.note,
            created_at=entry.created_at,
        )


class CreditsRead(BaseModel):
    """The balance and the ledger, newest first (`next_cursor`: the next page)."""

    balance: int
    items: list[LedgerEntryRead]
    next_cursor: str | None


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(None, min_length=1, max_length=500)

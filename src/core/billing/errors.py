"""Billing's errors. Refusals of an entitlement are `QuotaExceededError`s whose `reason`
is the stable code the HTTP layer answers with (402, 403 or 429)."""

from __future__ import annotations

from core.shared.errors import ConflictError, NotFoundError, QuotaExceededError


class TierNotFoundError(NotFoundError):
    code = "tier_not_found"
    default_detail = "No such tier."


class TierExistsError(ConflictError):
    code = "tier_exists"
    default_detail = "A tier with this code exists."


class ProductNotFoundError(NotFoundError):
    code = "product_not_found"
    default_detail = "No such product."


class ProductExistsError(ConflictError):
    code = "product_exists"
    default_detail = "A product with this code exists."


class PurchaseExistsError(ConflictError):
    code = "purchase_exists"
    default_detail = "This purchase is recorded already."


class PurchaseNotFoundError(NotFoundError):
    code = "purchase_not_found"
    default_detail = "No such purchase."


class ReservationNotFoundError(NotFoundError):
    code = "reservation_not_found"
    default_detail = "No such credit reservation."


class IdempotencyKeyTakenError(ConflictError):
    """The key was used before, for something else (another amount or kind)."""

    code = "idempotency_key_reused"
    default_detail = "This idempotency key was used for another request."


class InsufficientCreditsError(QuotaExceededError):
    default_detail = "Not enough credits."

    def __init__(self, *, needed: int, balance: int, upgrade_hint: str | None = None) -> None:
        super().__init__(
            reason="insufficient_credits",
            limit=needed,
            remaining=balance,
            upgrade_hint=upgrade_hint,
        )


class FeatureNotInTierError(QuotaExceededError):
    default_detail = "Your plan does not include this feature."

    def __init__(self, feature: str, *, upgrade_hint: str | None = None) -> None:
        super().__init__(reason="feature_not_in_tier", upgrade_hint=upgrade_hint)
        self.feature = feature


class LimitReachedError(QuotaExceededError):
    default_detail = "You have reached a limit of your plan."

    def __init__(
        self,
        name: str,
        *,
        limit: int,
        remaining: int,
        resets_at: str | None,
        upgrade_hint: str | None = None,
    ) -> None:
        super().__init__(
            reason="limit_reached",
            limit=limit,
            remaining=remaining,
            resets_at=resets_at,
            upgrade_hint=upgrade_hint,
        )
        self.name = name

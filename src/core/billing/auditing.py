"""What billing writes to the audit trail: every change of money or privilege, in the
transaction of the change itself."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from core.audit.model import AuditEntry, AuditOutcome, DetailValue


class BillingAction(StrEnum):
    CREDITS_GRANTED = "credits.granted"
    CREDITS_SPENT = "credits.spent"  # only spends of at least the policy's threshold
    CREDITS_REFUNDED = "credits.refunded"
    CREDITS_REVERSED = "credits.reversed"
    TIER_CREATED = "billing.tier_created"
    TIER_UPDATED = "billing.tier_updated"
    PRODUCT_CREATED = "billing.product_created"
    PRODUCT_UPDATED = "billing.product_updated"
    PURCHASE_RECORDED = "billing.purchase_recorded"
    PURCHASE_ENDED = "billing.purchase_ended"
    OVERRIDE_SET = "billing.override_set"
    OVERRIDE_REMOVED = "billing.override_removed"


def billing_entry(
    action: BillingAction,
    *,
    now: datetime,
    actor_id: int | None,
    target_type: str,
    target_id: str | int,
    **details: DetailValue,
) -> AuditEntry:
    return AuditEntry(
        action=action.value,
        outcome=AuditOutcome.SUCCESS,
        occurred_at=now,
        actor_id=actor_id,
        target_type=target_type,
        target_id=str(target_id),
        details=dict(details),
    )

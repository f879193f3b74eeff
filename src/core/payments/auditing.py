"""What payments write to the audit trail, in the transaction of the change itself.

Gateway ids are long random strings that the audit trail refuses as possible secrets;
entries name Portico's own ids (payment, checkout kind and code) instead.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from core.audit.model import AuditEntry, AuditOutcome, DetailValue


class PaymentAction(StrEnum):
    CHECKOUT_STARTED = "payments.checkout_started"
    PAYMENT_RECORDED = "payments.payment_recorded"
    PAYMENT_FAILED = "payments.payment_failed"
    PAYMENT_REFUNDED = "payments.payment_refunded"
    SUBSCRIPTION_CHANGED = "payments.subscription_changed"
    SUBSCRIPTION_CANCEL_REQUESTED = "payments.subscription_cancel_requested"
    SUBSCRIPTION_RESUMED = "payments.subscription_resumed"
    EVENT_REPLAYED = "payments.event_replayed"


def payment_entry(
    action: PaymentAction,
    *,
    now: datetime,
    user_id: int,
    actor_id: int | None = None,
    **details: DetailValue,
) -> AuditEntry:
    return AuditEntry(
        action=action.value,
        outcome=AuditOutcome.SUCCESS,
        occurred_at=now,
        actor_id=actor_id,
        target_type="user",
        target_id=str(user_id),
        details=dict(details),
    )

"""Subscriptions and payments (read-only), webhook events (replay through
`PaymentEventService`, audited as the operator's action)."""

from __future__ import annotations

from sqladmin import expose
from starlette.requests import Request
from starlette.responses import Response

from adapters.sqlalchemy.records_payment_events import WebhookEventRecord
from adapters.sqlalchemy.records_payments import PaymentRecord, SubscriptionRecord
from core.audit.model import MAX_TARGET_ID, looks_like_secret
from core.payments.events import PaymentEventService
from core.shared.errors import DomainError
from entrypoints.admin.context import actor_id
from entrypoints.admin.views.base import ReadOnlyView, identity, refused


@identity("subscriptions")
class SubscriptionView(ReadOnlyView, model=SubscriptionRecord):
    name = "Subscription"
    name_plural = "Subscriptions"
    icon = "fa-solid fa-repeat"
    category = "Payments"
    column_list = "__all__"


@identity("payments")
class PaymentView(ReadOnlyView, model=PaymentRecord):
    name = "Payment"
    name_plural = "Payments"
    icon = "fa-solid fa-credit-card"
    category = "Payments"
    column_list = "__all__"


@identity("webhook-events")
class WebhookEventView(ReadOnlyView, model=WebhookEventRecord):
    name = "Webhook event"
    name_plural = "Webhook events"
    icon = "fa-solid fa-bolt"
    category = "Payments"
    column_exclude_list = [WebhookEventRecord.payload]
    column_searchable_list = [WebhookEventRecord.id, WebhookEventRecord.type]
    column_default_sort = [(WebhookEventRecord.received_at, True)]
    post_actions = [("replay", "Replay")]

    @expose("/{pk:str}/replay", methods=["POST"])
    async def replay(self, request: Request) -> Response:
        event_id = request.path_params["pk"]
        events = self.context().get(PaymentEventService)
        try:
            receipt = await events.replay(event_id, actor_id=actor_id(request))
        except DomainError as exc:
            return refused(exc)
        # The service audits each user an effect changed; a replay that changed nothing
        # (its effects had all happened) is the operator's action all the same.
        await self.audit(
            request,
            "admin.webhook_event_replayed",
            target_type="webhook_event",
            target_id=_audit_id(event_id),
            outcome_after=receipt.outcome.value,
        )
        return self.back_to_details(request, event_id)


def _audit_id(event_id: str) -> str:
    """The event's id as the audit trail may keep it: whole when it passes the trail's
    secret guard, else its last 12 characters (gateway ids are long random runs, which
    the guard cannot tell from a token)."""
    if len(event_id) <= MAX_TARGET_ID and not looks_like_secret(event_id):
        return event_id
    return "..." + event_id[-12:]

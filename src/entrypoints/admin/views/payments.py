"""Subscriptions and payments (read-only), webhook events (replay through
`PaymentEventService`, which audits it with the operator)."""

from __future__ import annotations

from typing import Any

from sqladmin import expose
from starlette.requests import Request
from starlette.responses import Response

from adapters.sqlalchemy.records_payment_events import WebhookEventRecord
from adapters.sqlalchemy.records_payments import PaymentRecord, SubscriptionRecord
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

    def post_action_allowed(self, model: Any, slug: str) -> bool:
        return True

    @expose("/{pk:str}/replay", methods=["POST"])
    async def replay(self, request: Request) -> Response:
        event_id = request.path_params["pk"]
        try:
            await (
                self.context().get(PaymentEventService).replay(event_id, actor_id=actor_id(request))
            )
        except DomainError as exc:
            return refused(exc)
        return self.back_to_details(request, event_id)

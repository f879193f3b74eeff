"""The panel's views, one module per context; `ALL_VIEWS` in menu order."""

from __future__ import annotations

from entrypoints.admin.views.billing import (
    EnterpriseOverrideView,
    LedgerView,
    ProductView,
    PurchaseView,
    TierView,
    UsageView,
)
from entrypoints.admin.views.conversations import ConversationView, MessageView, ModelPriceView
from entrypoints.admin.views.identity import UserManageView, UserView
from entrypoints.admin.views.payments import PaymentView, SubscriptionView, WebhookEventView
from entrypoints.admin.views.platform import AuditView, JobView

ALL_VIEWS = (
    UserView,
    UserManageView,
    TierView,
    ProductView,
    EnterpriseOverrideView,
    PurchaseView,
    LedgerView,
    UsageView,
    ModelPriceView,
    ConversationView,
    MessageView,
    SubscriptionView,
    PaymentView,
    WebhookEventView,
    JobView,
    AuditView,
)

"""Buying: hosted checkout, the customer portal, the caller's subscription and payments."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.identity.accounts import AccountService
from core.identity.model import User
from core.payments.checkout import CheckoutService
from core.shared.query import PageRequest
from entrypoints.http.context import require_principal, service
from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse
from entrypoints.http.schemas.billing import PageQuery
from entrypoints.http.schemas.payments import (
    CancelSubscription,
    CheckoutCreate,
    PaymentList,
    PaymentRead,
    RedirectRead,
    SubscriptionRead,
)
from entrypoints.http.schemas.problem import Problem

group = EndpointGroup(tags=("billing",))


def site_url(request: Request) -> str:
    """The address the caller reached us at (a gateway that serves its own pages here,
    the fake, builds its links from it)."""
    return str(request.base_url).rstrip("/")


@group.post(
    "/api/v1/billing/checkout",
    access=Access.SESSION,
    responses={200: RedirectRead, 404: Problem, 409: Problem, 422: Problem},
)
async def start_checkout(request: Request, json: CheckoutCreate) -> Response:
    """A hosted checkout for a tier (a subscription) or a credit pack; send the user to
    `url`. 422 `not_for_sale` for what cannot be bought; 409 `subscription_exists` when
    the caller has a subscription (change plans in the portal)."""
    user = require_principal(request).user
    checkout = await service(request, CheckoutService).start(
        user, site_url=site_url(request), tier=json.tier, credit_pack=json.credit_pack
    )
    assert checkout.url is not None
    return ModelResponse(RedirectRead(url=checkout.url))


@group.post("/api/v1/billing/portal", access=Access.SESSION, responses={200: RedirectRead})
async def open_portal(request: Request) -> Response:
    """The gateway's customer portal: change plan, cancel, update the card, invoices."""
    user = require_principal(request).user
    url = await service(request, CheckoutService).portal(user, site_url=site_url(request))
    return ModelResponse(RedirectRead(url=url))


@group.get("/api/v1/billing/subscription", access=Access.SESSION, responses={200: SubscriptionRead})
async def read_subscription(request: Request) -> Response:
    """The caller's tier and subscription (`status` `none` when they never subscribed)."""
    user = require_principal(request).user
    view = await service(request, CheckoutService).subscription(user)
    return ModelResponse(SubscriptionRead.from_view(view))


@group.post(
    "/api/v1/billing/subscription/cancel",
    access=Access.SESSION,
    responses={200: SubscriptionRead, 404: Problem},
)
async def cancel_subscription(request: Request, json: CancelSubscription) -> Response:
    """Cancel at the end of the paid period (default) or now (the tier ends at once)."""
    principal = require_principal(request)
    payments = service(request, CheckoutService)
    await payments.cancel(principal.user, at_period_end=json.at_period_end)
    user = await _fresh_user(request, principal.user_id)
    return ModelResponse(SubscriptionRead.from_view(await payments.subscription(user)))


@group.post(
    "/api/v1/billing/subscription/resume",
    access=Access.SESSION,
    responses={200: SubscriptionRead, 404: Problem},
)
async def resume_subscription(request: Request) -> Response:
    """Undo a cancellation at period end."""
    principal = require_principal(request)
    payments = service(request, CheckoutService)
    await payments.resume(principal.user)
    user = await _fresh_user(request, principal.user_id)
    return ModelResponse(SubscriptionRead.from_view(await payments.subscription(user)))


@group.get("/api/v1/billing/payments", access=Access.SESSION, responses={200: PaymentList})
async def list_payments(request: Request, query: PageQuery) -> Response:
    """The caller's payments, newest first (`?limit=`, `?cursor=`)."""
    principal = require_principal(request)
    page = await service(request, CheckoutService).payments(
        principal.user_id, PageRequest(limit=query.limit, cursor=query.cursor)
    )
    return ModelResponse(
        PaymentList(
            items=[PaymentRead.from_payment(p) for p in page.items],
            next_cursor=page.next_cursor,
        )
    )


async def _fresh_user(request: Request, user_id: int) -> User:
    """The caller as stored now (cancelling now may have changed their tier)."""
    return await service(request, AccountService).get(user_id)

"""The fake payment gateway's pages, served by Portico itself outside production when
`PORTICO_PAYMENTS__BACKEND=fake`: a checkout page with a pay button, and a small
customer portal. A purchase made here goes through the same webhook code as Stripe's:
the fake emits the events a Stripe account would, signed with the webhook secret, and
they are received by `PaymentEventService.receive` like any delivery.

The unguessable session id in the URL is the capability: the POSTs need no session and
no CSRF token (`FAKE_GATEWAY_PREFIX` is exempt from the token check; a browser's
cross-site post is still refused by its origin).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from core.payments.events import PaymentEventService
from core.payments.policy import PaymentPolicy
from core.payments.ports import PaymentGateway
from core.shared.money import format_money
from entrypoints.http.context import get_runtime, service

FAKE_GATEWAY_PREFIX = "/fake-gateway/"
PORTAL_ACTIONS = ("cancel_at_period_end", "resume", "cancel_now")


class _Delivery(Protocol):
    payload: bytes
    signature: str


class _FakePages(Protocol):
    def checkout_view(self, session_id: str) -> Any: ...

    def complete_checkout(self, session_id: str) -> Sequence[_Delivery]: ...

    def portal_view(self, portal_id: str) -> Any: ...

    def portal_action(self, portal_id: str, action: str) -> Sequence[_Delivery]: ...


def _gateway(request: Request) -> _FakePages:
    gateway: Any = get_runtime(request).get(PaymentGateway)
    return gateway  # the fake: these routes are mounted only when it is selected


def _page(request: Request, title: str, body: str, status: int = 200) -> Response:
    policy = get_runtime(request).get(PaymentPolicy)
    # The form posts here, and the answer redirects to the front end's pages.
    targets = {_origin(policy.success_url), _origin(policy.cancel_url)}
    csp = (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
        f"form-action 'self' {' '.join(sorted(targets))}"
    )
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n"
        f"<p><strong>Fake payment gateway</strong> (development only: no money moves)</p>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n"
    )
    return HTMLResponse(
        document,
        status_code=status,
        headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"},
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _money(amount: int | None, currency: str | None) -> str:
    return "" if amount is None or currency is None else format_money(amount, currency)


async def checkout_page(request: Request) -> Response:
    view = _gateway(request).checkout_view(request.path_params["session_id"])
    if view is None:
        return _page(request, "No such checkout", "<p>This checkout does not exist.</p>", 404)
    if view.status != "open":
        body = f'<p>Already paid. <a href="{html.escape(view.success_url)}">Continue</a></p>'
        return _page(request, "Checkout complete", body)
    price = _money(getattr(view, "amount", None), getattr(view, "currency", None))
    body = (
        f"<p>{html.escape(str(view.description))}</p>\n"
        f"<p>{html.escape(price)}</p>\n"
        f'<form method="post" action="{html.escape(request.url.path)}">'
        '<button type="submit">Pay</button></form>\n'
        f'<p><a href="{html.escape(view.cancel_url)}">Cancel</a></p>\n'
    )
    return _page(request, "Checkout", body)


async def complete_checkout(request: Request) -> Response:
    pages = _gateway(request)
    session_id = request.path_params["session_id"]
    view = pages.checkout_view(session_id)
    if view is None:
        return _page(request, "No such checkout", "<p>This checkout does not exist.</p>", 404)
    await _deliver(request, pages.complete_checkout(session_id))
    return RedirectResponse(view.success_url, status_code=303)


async def portal_page(request: Request) -> Response:
    portal_id = request.path_params["portal_id"]
    view = _gateway(request).portal_view(portal_id)
    if view is None:
        return _page(request, "No such portal session", "<p>It does not exist.</p>", 404)
    rows = "".join(
        f"<li>{html.escape(str(item))}</li>" for item in getattr(view, "lines", ()) or ()
    )
    forms = "".join(
        f'<form method="post" action="{html.escape(request.url.path)}/{action}">'
        f'<button type="submit">{action.replace("_", " ").capitalize()}</button></form>\n'
        for action in PORTAL_ACTIONS
    )
    back = f'<p><a href="{html.escape(view.return_url)}">Back</a></p>\n'
    return _page(request, "Billing portal", f"<ul>{rows}</ul>\n{forms}{back}")


async def portal_action(request: Request) -> Response:
    pages = _gateway(request)
    portal_id = request.path_params["portal_id"]
    action = request.path_params["action"]
    if action not in PORTAL_ACTIONS or pages.portal_view(portal_id) is None:
        return _page(request, "Not found", "<p>No such portal action.</p>", 404)
    await _deliver(request, pages.portal_action(portal_id, action))
    return RedirectResponse(f"{FAKE_GATEWAY_PREFIX}portal/{portal_id}", status_code=303)


async def _deliver(request: Request, deliveries: Sequence[_Delivery]) -> None:
    events = service(request, PaymentEventService)
    for delivery in deliveries:
        await events.receive(delivery.payload, delivery.signature)


def fake_gateway_routes() -> list[Route]:
    """The pages, kept out of the API document (they are the gateway's, not the API)."""
    pages = (
        ("/fake-gateway/checkout/{session_id}", checkout_page, "GET"),
        ("/fake-gateway/checkout/{session_id}", complete_checkout, "POST"),
        ("/fake-gateway/portal/{portal_id}", portal_page, "GET"),
        ("/fake-gateway/portal/{portal_id}/{action}", portal_action, "POST"),
    )
    return [
        Route(path, handler, methods=[method], include_in_schema=False)
        for path, handler, method in pages
    ]

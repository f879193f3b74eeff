"""Plans, the caller's entitlements and the caller's credits."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.billing.catalog import CatalogService
from core.billing.credits import CreditService
from core.billing.entitlements import EntitlementService
from core.shared.query import PageRequest
from entrypoints.http.context import require_principal, service
from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse
from entrypoints.http.schemas.billing import (
    CreditsRead,
    EntitlementsRead,
    LedgerEntryRead,
    PageQuery,
    TierList,
    TierRead,
)

group = EndpointGroup(tags=("billing",))


@group.get("/api/v1/tiers", access=Access.PUBLIC, responses={200: TierList})
async def list_tiers(request: Request) -> Response:
    """The public plans, cheapest first: price, features and limits."""
    tiers = await service(request, CatalogService).public_tiers()
    return ModelResponse(TierList(items=[TierRead.from_tier(tier) for tier in tiers]))


@group.get("/api/v1/me/entitlements", access=Access.SESSION, responses={200: EntitlementsRead})
async def read_entitlements(request: Request) -> Response:
    """What the caller may do now: tier, features, limits with their use, credits."""
    user = require_principal(request).user
    granted, usage = await service(request, EntitlementService).overview(user)
    return ModelResponse(EntitlementsRead.build(granted, usage))


@group.get("/api/v1/credits", access=Access.SESSION, responses={200: CreditsRead})
async def read_credits(request: Request, query: PageQuery) -> Response:
    """The caller's credit balance and ledger, newest first (`?limit=`, `?cursor=`)."""
    principal = require_principal(request)
    balance, page = await service(request, CreditService).history(
        principal.user_id, PageRequest(limit=query.limit, cursor=query.cursor)
    )
    items = [LedgerEntryRead.from_entry(entry) for entry in page.items]
    return ModelResponse(CreditsRead(balance=balance, items=items, next_cursor=page.next_cursor))

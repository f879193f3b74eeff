"""Bearer tokens for mobile and API clients: sign-in, refresh, revocation.

These endpoints are `PUBLIC`: the credentials travel in the body, no cookie is set or
read, so there is nothing for CSRF to protect, and an Authorization header is ignored
(an expired access token sent along does not block its own refresh). Answers carrying
tokens are `Cache-Control: no-store` (RFC 6749, section 5.1).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.identity.service import TokenService
from entrypoints.http.context import client_info, service
from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse, no_content
from entrypoints.http.schemas.problem import Problem
from entrypoints.http.schemas.tokens import (
    TokenRefreshRequest,
    TokenRequest,
    TokenResponse,
    TokenRevokeRequest,
)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

group = EndpointGroup(tags=("auth",))


@group.post(
    "/api/v1/auth/token",
    access=Access.PUBLIC,
    responses={200: TokenResponse, 401: Problem},
)
async def issue_token(request: Request, json: TokenRequest) -> Response:
    """Sign in with email and password and get an access and a refresh token.

    Unknown email and wrong password get the same 401 `invalid_credentials` as the
    browser login. No cookie is set and no CSRF token is needed.
    """
    pair = await service(request, TokenService).issue_pair(
        json.email, json.password, client=client_info(request)
    )
    return ModelResponse(TokenResponse.from_pair(pair), headers=NO_STORE)


@group.post(
    "/api/v1/auth/token/refresh",
    access=Access.PUBLIC,
    responses={200: TokenResponse, 401: Problem},
)
async def refresh_token(request: Request, json: TokenRefreshRequest) -> Response:
    """Trade a refresh token for a new pair; the refresh token sent is dead afterwards.

    An unknown, expired, used or revoked refresh token is a 401 `invalid_refresh_token`.
    Sending a used one again also ends its whole sign-in: the newest refresh token of
    the family stops working too (a stolen token cannot live on beside the real one).
    """
    pair = await service(request, TokenService).refresh(
        json.refresh_token, client=client_info(request)
    )
    return ModelResponse(TokenResponse.from_pair(pair), headers=NO_STORE)


@group.post("/api/v1/auth/token/revoke", access=Access.PUBLIC, responses={204: None})
async def revoke_token(request: Request, json: TokenRevokeRequest) -> Response:
    """End the sign-in a refresh token belongs to (RFC 7009).

    Always 204, for unknown or already revoked tokens too. Access tokens already issued
    keep working until they expire (`expires_in`); logout-all ends those at once.
    """
    await service(request, TokenService).revoke(json.refresh_token, client=client_info(request))
    return no_content()

"""Registration and the caller's own account."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.identity.service import AccountService
from entrypoints.http.context import client_info, get_settings, require_principal, service
from entrypoints.http.cookies import clear_session_cookie
from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse, no_content
from entrypoints.http.schemas.problem import Problem
from entrypoints.http.schemas.users import DeleteMe, UserCreate, UserRead, UserUpdate

group = EndpointGroup(tags=("users",))


@group.post(
    "/api/v1/users",
    access=Access.PRE_SESSION,
    responses={201: UserRead, 409: Problem, 422: Problem},
)
async def register(request: Request, json: UserCreate) -> Response:
    """Create an account.

    409 `email_taken` (emails are unique case-insensitively) or `username_taken`;
    422 for an invalid email or username, a weak password or unknown fields.
    """
    user = await service(request, AccountService).register(
        json.email, json.username, json.password, client=client_info(request)
    )
    return ModelResponse(UserRead.from_user(user), status_code=201)


@group.get("/api/v1/users/me", access=Access.SESSION, responses={200: UserRead})
async def read_me(request: Request) -> Response:
    """The caller's account."""
    return ModelResponse(UserRead.from_user(require_principal(request).user))


@group.patch(
    "/api/v1/users/me",
    access=Access.SESSION,
    responses={200: UserRead, 409: Problem, 422: Problem},
)
async def update_me(request: Request, json: UserUpdate) -> Response:
    """Change the username. Privileged fields (tier, superuser, ...) are refused (422)."""
    principal = require_principal(request)
    user = await service(request, AccountService).update_profile(
        principal.user_id, username=json.username
    )
    return ModelResponse(UserRead.from_user(user))


@group.delete(
    "/api/v1/users/me",
    access=Access.SESSION,
    responses={204: None, 403: Problem},
)
async def delete_me(request: Request, json: DeleteMe) -> Response:
    """Delete the account (soft); needs the password. Every session ends.

    A wrong password is a 403 `wrong_password`.
    """
    principal = require_principal(request)
    await service(request, AccountService).delete_account(
        principal.user_id, json.password, client=client_info(request)
    )
    response = no_content()
    clear_session_cookie(response, get_settings(request))
    return response

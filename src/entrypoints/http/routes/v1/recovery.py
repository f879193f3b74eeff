"""Password reset and email verification (API.md "Accounts and auth").

CSRF: the anonymous forms (reset request, reset confirm, verify confirm) are
`PRE_SESSION`, like login: they need the double-submit token from `GET
/api/v1/auth/csrf` (or the session's token when a session is present). Verify-confirm is
pre-session rather than session on purpose: the link is often opened on another device
or after the session ended, and the token in it is the credential; CSRF protection still
keeps other sites from posting it. Verify-request acts on the signed-in user: `SESSION`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.identity.service import EmailVerificationService, PasswordResetService
from core.shared.errors import RuleViolationError
from entrypoints.http.context import client_info, get_settings, require_principal, service
from entrypoints.http.cookies import clear_session_cookie, session_token
from entrypoints.http.endpoints import Access, EndpointGroup, no_content
from entrypoints.http.schemas.problem import Problem
from entrypoints.http.schemas.recovery import (
    EmailVerificationConfirm,
    PasswordResetConfirm,
    PasswordResetRequest,
)

group = EndpointGroup(tags=("auth",))


def accepted() -> Response:
    return Response(status_code=202)


@group.post(
    "/api/v1/auth/password/reset-request",
    access=Access.PRE_SESSION,
    responses={202: None},
)
async def request_password_reset(request: Request, json: PasswordResetRequest) -> Response:
    """Ask for a password-reset mail.

    Always 202, for unknown and malformed addresses too: the answer never tells whether
    an account exists. Requests for one account within a minute send one mail.
    """
    await service(request, PasswordResetService).request_password_reset(
        json.email, client=client_info(request)
    )
    return accepted()


@group.post(
    "/api/v1/auth/password/reset-confirm",
    access=Access.PRE_SESSION,
    responses={204: None, 422: Problem},
)
async def confirm_password_reset(request: Request, json: PasswordResetConfirm) -> Response:
    """Set a new password with the token from the reset mail.

    The token works once. Every session of the user ends (a session cookie sent along is
    cleared). 422 `invalid_token` for an unknown, used or expired token; 422
    `weak_password` for a new password the policy refuses (the token stays usable).
    """
    try:
        await service(request, PasswordResetService).reset_password(
            json.token, json.new_password, client=client_info(request)
        )
    except RuleViolationError as exc:
        if exc.field == "password":
            exc.field = "new_password"
        raise
    response = no_content()
    settings = get_settings(request)
    if session_token(request, settings) is not None:
        clear_session_cookie(response, settings)
    return response


@group.post(
    "/api/v1/auth/email/verify-request",
    access=Access.SESSION,
    responses={202: None},
)
async def request_email_verification(request: Request) -> Response:
    """Ask for a verification mail for the signed-in user's address.

    202 also when the address is already verified (then nothing is sent). Requests
    within a minute send one mail.
    """
    principal = require_principal(request)
    await service(request, EmailVerificationService).request_email_verification(
        principal.user_id, client=client_info(request)
    )
    return accepted()


@group.post(
    "/api/v1/auth/email/verify-confirm",
    access=Access.PRE_SESSION,
    responses={204: None, 422: Problem},
)
async def confirm_email_verification(request: Request, json: EmailVerificationConfirm) -> Response:
    """Confirm the address with the token from the verification mail (works once).

    No session needed: the token is the credential. 422 `invalid_token` for an unknown,
    used or expired token.
    """
    await service(request, EmailVerificationService).confirm_email(
        json.token, client=client_info(request)
    )
    return no_content()

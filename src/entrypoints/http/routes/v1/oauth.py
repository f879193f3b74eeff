"""Signing in with GitHub or Google (API.md "Accounts and auth": the OAuth rows).

Access: both OAuth endpoints are `PUBLIC` (identity-free): nobody is signed in yet, a
session cookie or Authorization header plays no part in who signs in, and both are GET,
so CSRF tokens do not apply. What stands in for CSRF protection is `state`: the
callback only completes a sign-in this browser started (the signed state cookie), so
another site cannot log a victim in to the attacker's account (login CSRF).

Errors after the provider's redirect are RFC 9457 problems like everywhere else in the
API (not a redirect to the front end with `?error=`): the stable `code` says what went
wrong, statuses stay visible to monitoring (503 with Retry-After when the provider is
down), and nothing from the provider is reflected into a URL. The state cookie is
cleared on every callback answer, so a failed attempt starts over from `authorize`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.identity.errors import SessionNotFoundError
from core.identity.oauth_errors import OAuthDeniedError
from core.identity.service import OAuthService
from core.shared.clock import Clock
from core.shared.errors import DomainError
from entrypoints.bootstrap.oauth_settings import OAUTH_CALLBACK_PATH
from entrypoints.http.context import client_info, get_runtime, get_settings, require_principal
from entrypoints.http.cookies import session_token, set_session_cookie
from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse
from entrypoints.http.errors import domain_error_response
from entrypoints.http.oauth_cookie import (
    clear_oauth_cookie,
    oauth_state_cookies,
    read_oauth_cookie,
    set_oauth_cookie,
)
from entrypoints.http.schemas.auth import LoginResponse
from entrypoints.http.schemas.oauth import OAuthCallbackQuery
from entrypoints.http.schemas.problem import Problem
from entrypoints.http.schemas.users import UserRead

OAUTH_AUTHORIZE_PATH = "/api/v1/auth/oauth/{provider}/authorize"
NO_STORE = {"Cache-Control": "no-store"}

group = EndpointGroup(tags=("auth",))


@group.get(OAUTH_AUTHORIZE_PATH, access=Access.PUBLIC, responses={302: None, 404: Problem})
async def oauth_authorize(request: Request) -> Response:
    """Start signing in with a provider (`github`, `google`): 302 to its consent page.

    The redirect carries `state` and a PKCE S256 challenge; the state and verifier are
    kept in a short-lived signed HttpOnly cookie until the callback. 404
    `oauth_provider_not_found` for a provider that is unknown or not configured.
    """
    runtime = get_runtime(request)
    settings = get_settings(request)
    start = runtime.get(OAuthService).begin(request.path_params["provider"])
    response = RedirectResponse(start.url, status_code=302, headers=NO_STORE)
    cookie = oauth_state_cookies(request).seal(start, runtime.get(Clock).now())
    set_oauth_cookie(response, settings, cookie)
    return response


@group.get(
    OAUTH_CALLBACK_PATH,
    access=Access.PUBLIC,
    responses={302: None, 400: Problem, 404: Problem, 409: Problem},
)
async def oauth_callback(request: Request, query: OAuthCallbackQuery) -> Response:
    """Where the provider sends the browser back: on success the session starts (the
    session cookie, as at login) and the answer is a 302 to the front end
    (`accounts.frontend_url` + `oauth.success_path`); the front end then reads its CSRF
    token from `GET /api/v1/auth/session`.

    The account: the one linked to this provider account; else the account whose
    verified email the provider confirms (linked now); else a new one. Problems:
    400 `oauth_state_invalid` (missing, mismatched or expired state: start again),
    400 `oauth_denied` (declined at the provider), 400 `oauth_failed` (the provider
    refused the code), 404 `oauth_provider_not_found`, 409 `oauth_email_unverified`
    (no email the provider vouches for), 409 `account_exists` (an account with this
    email whose own email is not verified: sign in with the password first), 409
    `email_taken` (the address belongs to a deleted account), 503 provider down.
    """
    runtime = get_runtime(request)
    settings = get_settings(request)
    provider: str = request.path_params["provider"]
    kept = oauth_state_cookies(request).open(
        read_oauth_cookie(request, settings), runtime.get(Clock).now()
    )
    if kept is not None and kept.provider != provider:
        kept = None  # started with another provider: not this sign-in's state
    try:
        if query.error is not None:
            runtime.get(OAuthService).providers.get(provider)  # unknown providers are a 404 first
            raise OAuthDeniedError()
        result = await runtime.get(OAuthService).complete(
            provider,
            code=query.code,
            state=query.state,
            expected_state=kept.state if kept else None,
            code_verifier=kept.code_verifier if kept else None,
            client=client_info(request),
            previous_token=session_token(request, settings),
        )
    except DomainError as exc:
        failed = domain_error_response(exc, now=runtime.get(Clock).now())
        clear_oauth_cookie(failed, settings)
        return failed
    target = settings.accounts.frontend_url.rstrip("/") + settings.oauth.success_path
    response = RedirectResponse(target, status_code=302, headers=NO_STORE)
    set_session_cookie(response, settings, result.login.token)
    clear_oauth_cookie(response, settings)
    return response


@group.get(
    "/api/v1/auth/session", access=Access.SESSION, responses={200: LoginResponse, 404: Problem}
)
async def current_session(request: Request) -> Response:
    """The signed-in user and this session's CSRF token: what a browser signed in by a
    redirect (OAuth) needs before its first unsafe request, since it never saw a login
    answer. Same-origin pages only can read it. 404 `session_not_found` for bearer
    callers (they have no session, and need no CSRF token).
    """
    principal = require_principal(request)
    if principal.session is None:
        raise SessionNotFoundError()
    return ModelResponse(
        LoginResponse(
            user=UserRead.from_user(principal.user), csrf_token=principal.session.csrf_token
        )
    )

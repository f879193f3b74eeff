"""Login, logout, browser sessions, password change."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.identity.errors import SessionNotFoundError
from core.identity.service import AccountService, AuthenticationService, TokenService
from core.shared.clock import Clock
from core.shared.errors import RuleViolationError
from entrypoints.http.context import (
    client_info,
    get_runtime,
    get_settings,
    require_principal,
    service,
)
from entrypoints.http.cookies import (
    clear_session_cookie,
    session_token,
    set_pre_session_cookie,
    set_session_cookie,
)
from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse, no_content
from entrypoints.http.schemas.auth import (
    CsrfTokenRead,
    LoginRequest,
    LoginResponse,
    LogoutAllRequest,
    PasswordChange,
    SessionList,
    SessionRead,
)
from entrypoints.http.schemas.problem import Problem
from entrypoints.http.schemas.users import UserRead

MAX_ID = 2**63 - 1

group = EndpointGroup(tags=("auth",))


@group.get("/api/v1/auth/csrf", access=Access.PUBLIC, responses={200: CsrfTokenRead})
async def issue_csrf_token(request: Request) -> Response:
    """A pre-session CSRF token for the login and registration forms.

    The token is also set as a cookie; send it back in `X-CSRF-Token` (double submit).
    """
    runtime = get_runtime(request)
    token = request.app.state.pre_session_tokens.issue(runtime.get(Clock).now())
    response = ModelResponse(CsrfTokenRead(csrf_token=token))
    set_pre_session_cookie(response, get_settings(request), token)
    return response


@group.post(
    "/api/v1/auth/login",
    access=Access.PRE_SESSION,
    responses={200: LoginResponse, 401: Problem},
)
async def login(request: Request, json: LoginRequest) -> Response:
    """Log in with email and password: sets the session cookie, returns the CSRF token.

    Unknown email and wrong password get the same 401 `invalid_credentials`. A session
    cookie sent with the login is ended: the session id always changes at login.
    """
    runtime = get_runtime(request)
    settings = get_settings(request)
    result = await runtime.get(AuthenticationService).login(
        json.email,
        json.password,
        client=client_info(request),
        previous_token=session_token(request, settings),
    )
    response = ModelResponse(
        LoginResponse(user=UserRead.from_user(result.user), csrf_token=result.session.csrf_token)
    )
    set_session_cookie(response, settings, result.token)
    return response


@group.post("/api/v1/auth/logout", access=Access.SESSION, responses={204: None})
async def logout(request: Request) -> Response:
    """End this session, server-side, at once; the cookie is cleared.

    With a bearer token: end this sign-in (its refresh token family); the access token
    itself works until it expires.
    """
    principal = require_principal(request)
    if principal.token_family is not None:
        await service(request, TokenService).sign_out(
            principal.user_id, principal.token_family, client=client_info(request)
        )
        return no_content()
    assert principal.token is not None
    await service(request, AuthenticationService).logout(
        principal.token, client=client_info(request)
    )
    response = no_content()
    clear_session_cookie(response, get_settings(request))
    return response


@group.post("/api/v1/auth/logout-all", access=Access.SESSION, responses={204: None})
async def logout_all(request: Request, json: LogoutAllRequest) -> Response:
    """End every session and bearer token of the user (all but this one with
    `keep_current`). With a bearer token, `keep_current` keeps this sign-in's refresh
    token; every access token ends, this one too, so refresh once."""
    principal = require_principal(request)
    await service(request, AuthenticationService).logout_all(
        principal.user_id,
        keep_token=principal.token if json.keep_current else None,
        keep_token_family=principal.token_family if json.keep_current else None,
        client=client_info(request),
    )
    response = no_content()
    if not json.keep_current:
        clear_session_cookie(response, get_settings(request))
    return response


@group.get("/api/v1/auth/sessions", access=Access.SESSION, responses={200: SessionList})
async def list_sessions(request: Request) -> Response:
    """The user's live sessions, oldest first; `current` marks this one."""
    principal = require_principal(request)
    sessions = await service(request, AuthenticationService).list_sessions(principal.user_id)
    current_id = principal.session.id if principal.session is not None else None
    items = [SessionRead.from_session(s, current_id=current_id) for s in sessions]
    return ModelResponse(SessionList(items=items, next_cursor=None))


@group.delete(
    "/api/v1/auth/sessions/{session_id:int}",
    access=Access.SESSION,
    responses={204: None, 404: Problem},
)
async def revoke_session(request: Request) -> Response:
    """End one of the user's sessions. Another user's session id is a 404."""
    principal = require_principal(request)
    session_id: int = request.path_params["session_id"]
    if session_id > MAX_ID:
        raise SessionNotFoundError()
    await service(request, AuthenticationService).revoke_session(
        principal.user_id, session_id, client=client_info(request)
    )
    response = no_content()
    if principal.session is not None and session_id == principal.session.id:
        clear_session_cookie(response, get_settings(request))
    return response


@group.post(
    "/api/v1/auth/password/change",
    access=Access.SESSION,
    responses={204: None, 403: Problem, 422: Problem},
)
async def change_password(request: Request, json: PasswordChange) -> Response:
    """Change the password; every other session and bearer sign-in of the user ends
    (with a bearer token, this sign-in's refresh token is kept; refresh once).

    A wrong current password is a 403 `wrong_password`; a weak new one a 422.
    """
    principal = require_principal(request)
    try:
        await service(request, AccountService).change_password(
            principal.user_id,
            json.current_password,
            json.new_password,
            keep_session_token=principal.token,
            keep_token_family=principal.token_family,
            client=client_info(request),
        )
    except RuleViolationError as exc:
        if exc.field == "password":
            exc.field = "new_password"
        raise
    return no_content()

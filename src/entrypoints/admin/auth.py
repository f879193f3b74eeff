"""SQLAdmin's authentication backend over Portico's own sessions.

Identity is decided from the server-side session (the API's cookie and store, looked up
once per request by `guard.AdminGuard`), never from SQLAdmin's signed client-side
cookie, which holds flash messages only. Logging in here starts an ordinary Portico
session through `AuthenticationService`, so logout (or logout-all, a password change,
a deactivation) anywhere ends admin access too.
"""

from __future__ import annotations

import hashlib
import hmac

from sqladmin.authentication import AuthenticationBackend
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.audit.model import AuditOutcome
from core.audit.service import AuditTrail
from core.identity.service import AuthenticationService
from core.shared.errors import DomainError
from entrypoints.admin.context import AdminContext, caller, client_info
from entrypoints.admin.guard import error_page
from entrypoints.session_cookie import clear_session_cookie, session_token, set_session_cookie

FLASH_COOKIE = "portico_admin_flash"


class PorticoAdminAuth(AuthenticationBackend):
    def __init__(self, context: AdminContext, base_path: str = "/admin") -> None:
        settings = context.settings
        # A key of its own: SQLAdmin's cookie can never be mistaken for anything else.
        key = hmac.new(
            settings.secret().encode("utf-8"), b"portico/admin/flash/v1", hashlib.sha256
        ).hexdigest()
        super().__init__(
            secret_key=key,
            session_cookie=FLASH_COOKIE,
            path=base_path,
            same_site="strict",
            https_only=settings.cookie_secure,
            max_age=None,
        )
        self.context = context

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        email = str(form.get("username") or "")
        password = str(form.get("password") or "")
        if not email or not password:
            return False
        service = self.context.get(AuthenticationService)
        client = client_info(request)
        try:
            user = await service.verify_credentials(email, password, client=client)
        except DomainError:
            return False  # the same answer for every refusal, throttling included
        if not user.is_superuser:
            await self.context.get(AuditTrail).record(
                "admin.login_refused",
                actor_id=user.id,
                target_type="user",
                target_id=user.id,
                client=client,
                outcome=AuditOutcome.FAILURE,
                reason="not_superuser",
            )
            return False
        result = await service.start_session_for(
            user,
            client=client,
            previous_token=session_token(request, self.context.settings),
            via="admin",
        )
        response = RedirectResponse(request.url_for("admin:index"), status_code=302)
        set_session_cookie(response, self.context.settings, result.token)
        return response

    async def logout(self, request: Request) -> Response | bool:
        token = session_token(request, self.context.settings)
        if token is not None:
            await self.context.get(AuthenticationService).logout(token, client=client_info(request))
        response = RedirectResponse(request.url_for("admin:login"), status_code=302)
        clear_session_cookie(response, self.context.settings)
        return response

    async def authenticate(self, request: Request) -> Response | bool:
        found = caller(request)
        if found is None:
            return False
        if not found.user.is_superuser:  # the guard refuses them first; kept as a backstop
            return error_page(403, "Forbidden", "The admin panel is for superusers only.")
        return True

    async def get_user_id(self, request: Request) -> int | None:
        found = caller(request)
        return None if found is None else found.user.id

"""Users: the list and details (read-only rows), and one page per user to act on it:
deactivate, reactivate, verify the email, end every session, revoke one session, and
adjust the credit balance. Every action is a POST through a core service."""

from __future__ import annotations

import re
import secrets
from typing import Any

from markupsafe import Markup
from sqladmin import BaseView, Flash, expose
from sqladmin.filters import BooleanFilter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapters.sqlalchemy.records import UserRecord
from core.audit.service import AuditTrail
from core.billing.credits import CreditService
from core.identity.errors import SessionNotFoundError
from core.identity.service import AuthenticationService
from core.shared.errors import DomainError, RuleViolationError
from entrypoints.admin.administration import resolve_administration
from entrypoints.admin.context import actor_id, client_info
from entrypoints.admin.guard import error_page
from entrypoints.admin.views.base import ReadOnlyView, context_of, identity, refused

MANAGE_PATH = "/manage/users/{user_id:int}"
_REASON_MAX = 200
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _manage_link(model: Any, _attribute: Any) -> Markup:
    user_id = int(model.id)
    return Markup(
        '{} · <a href="../../manage/users/{}">Manage (sessions, credits, status)</a>'
    ).format(user_id, user_id)


@identity("users")
class UserView(ReadOnlyView, model=UserRecord):
    name = "User"
    name_plural = "Users"
    icon = "fa-solid fa-user"
    category = "Identity"
    column_list = [
        UserRecord.id,
        UserRecord.email,
        UserRecord.username,
        UserRecord.tier_code,
        UserRecord.is_superuser,
        UserRecord.email_verified,
        UserRecord.created_at,
        UserRecord.deleted_at,
    ]
    # The hash never leaves the database, not even to a superuser.
    column_details_exclude_list = [UserRecord.password_hash]
    column_searchable_list = [UserRecord.email, UserRecord.username]
    column_filters = [
        BooleanFilter(UserRecord.is_superuser),
        BooleanFilter(UserRecord.email_verified),
    ]
    column_sortable_list = [UserRecord.id, UserRecord.email, UserRecord.created_at]
    column_default_sort = [(UserRecord.id, True)]
    column_formatters_detail = {UserRecord.id: lambda m, a: _manage_link(m, a)}


class UserManageView(BaseView):
    """One user's status, sessions and credits, with the actions on them (not in the menu)."""

    name = "Manage user"
    identity = "user-manage"

    def is_visible(self, request: Request) -> bool:
        return False

    @expose(MANAGE_PATH, methods=["GET"], identity="user-manage")
    async def manage(self, request: Request) -> Response:
        return await self._page(request, request.path_params["user_id"])

    @expose(MANAGE_PATH + "/{action:str}", methods=["POST"], identity="user-action")
    async def act(self, request: Request) -> Response:
        user_id: int = request.path_params["user_id"]
        action: str = request.path_params["action"]
        handler = _ACTIONS.get(action)
        if handler is None:
            return error_page(404, "Not found", "No such action.")
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            message = await handler(self, request, user_id, fields)
        except DomainError as exc:
            return refused(exc)
        Flash.success(request, message)
        url = request.url_for("admin:view-user-manage", user_id=user_id)
        return RedirectResponse(url, status_code=303)

    # --- the page ----------------------------------------------------------------------

    async def _page(self, request: Request, user_id: int) -> Response:
        context = context_of(self)
        async with self._admin_ref.session_maker() as session:  # type: ignore[attr-defined]
            user = await session.get(UserRecord, user_id)
        if user is None:
            return error_page(404, "Not found", "No such user.")
        sessions = await context.get(AuthenticationService).list_sessions(user_id)
        balance = await context.get(CreditService).balance(user_id)
        return await self.templates.TemplateResponse(
            request,
            "portico/user_manage.html",
            {
                "user": user,
                "sessions": sorted(sessions, key=lambda s: s.created_at, reverse=True),
                "balance": balance,
                "adjustment_key": secrets.token_urlsafe(24),
            },
        )

    # --- the actions (each returns what the page says afterwards) -----------------------

    async def _deactivate(self, request: Request, user_id: int, form: dict[str, str]) -> str:
        reason = form.get("reason", "").strip()[:_REASON_MAX]
        await resolve_administration(context_of(self)).deactivate(
            user_id, actor_id=actor_id(request), reason=reason, client=client_info(request)
        )
        return "User deactivated; their sessions and tokens ended."

    async def _reactivate(self, request: Request, user_id: int, form: dict[str, str]) -> str:
        await resolve_administration(context_of(self)).reactivate(
            user_id, actor_id=actor_id(request), client=client_info(request)
        )
        return "User reactivated."

    async def _verify_email(self, request: Request, user_id: int, form: dict[str, str]) -> str:
        await resolve_administration(context_of(self)).verify_email(
            user_id, actor_id=actor_id(request), client=client_info(request)
        )
        return "Email marked verified."

    async def _end_sessions(self, request: Request, user_id: int, form: dict[str, str]) -> str:
        count = await resolve_administration(context_of(self)).end_sessions(
            user_id, actor_id=actor_id(request), client=client_info(request)
        )
        return f"{count} session(s) ended."

    async def _revoke_session(self, request: Request, user_id: int, form: dict[str, str]) -> str:
        raw = form.get("session_id", "")
        if not raw.isdigit():
            raise SessionNotFoundError()
        session_id = int(raw)
        context = context_of(self)
        client = client_info(request)
        await context.get(AuthenticationService).revoke_session(user_id, session_id, client=client)
        await context.get(AuditTrail).record(
            "admin.session_revoked",
            actor_id=actor_id(request),
            target_type="user",
            target_id=user_id,
            client=client,
            revoked=session_id,
        )
        return "Session revoked."

    async def _adjust_credits(self, request: Request, user_id: int, form: dict[str, str]) -> str:
        """One ledger entry and its one audit record, through `CreditService`; the form's
        key makes a resubmitted form change nothing more."""
        try:
            amount = int(form.get("amount", "").strip())
        except ValueError:
            raise RuleViolationError("The amount is a whole number of credits.") from None
        reason = form.get("reason", "").strip()
        if not reason or len(reason) > _REASON_MAX:
            raise RuleViolationError(f"Give a reason (1 to {_REASON_MAX} characters).")
        key = form.get("adjustment_key", "")
        if not _KEY.match(key):
            raise RuleViolationError("The form is incomplete; reload the page.")
        credits = context_of(self).get(CreditService)
        admin_id = actor_id(request)
        idempotency_key = f"admin-adjustment:{key}"
        if amount > 0:
            entry = await credits.grant(
                user_id,
                amount,
                idempotency_key=idempotency_key,
                source="admin",
                note=reason,
                actor_id=admin_id,
            )
            return f"{entry.delta} credits granted."
        if amount < 0:
            taken = await credits.take_back(
                user_id,
                -amount,
                idempotency_key=idempotency_key,
                source="admin",
                note=reason,
                actor_id=admin_id,
            )
            return (
                "Nothing taken: the balance is 0."
                if taken is None
                else (f"{-taken.delta} credits taken back.")
            )
        raise RuleViolationError("An adjustment is not 0 credits.")


_ACTIONS = {
    "deactivate": UserManageView._deactivate,
    "reactivate": UserManageView._reactivate,
    "verify-email": UserManageView._verify_email,
    "end-sessions": UserManageView._end_sessions,
    "revoke-session": UserManageView._revoke_session,
    "adjust-credits": UserManageView._adjust_credits,
}

"""What every view shares: read-only by default, the panel's context, POST actions.

SQLAdmin sets its references (`_admin_ref`, `session_maker`) on the view *class*;
`app.build_admin` registers a fresh subclass of each view per panel, so two apps in one
process (tests) never share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from sqladmin import ModelView
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.audit.service import AuditTrail
from core.shared.errors import DomainError, UnavailableError
from entrypoints.admin.context import AdminContext, actor_id, client_info
from entrypoints.admin.guard import error_page

V = TypeVar("V", bound=type[Any])


def identity(slug: str) -> Callable[[V], V]:
    """The view's URL segment (SQLAdmin would derive `user-record` from the record)."""

    def apply(view: V) -> V:
        view.identity = slug
        return view

    return apply


def context_of(view: Any) -> AdminContext:
    return view._admin_ref.portico_context  # type: ignore[no-any-return]


class ReadOnlyView(ModelView):
    """Lists and details only: rows change through core services, never here."""

    can_create = False
    can_edit = False
    can_delete = False
    can_export = False
    can_import = False
    page_size = 50
    page_size_options: ClassVar[list[int]] = [25, 50, 100]
    details_template = "portico/details.html"
    # (slug, label) of POST actions shown on a row's details page: `/<identity>/<pk>/<slug>`.
    post_actions: ClassVar[list[tuple[str, str]]] = []

    def post_action_allowed(self, model: Any, slug: str) -> bool:
        """Whether the details page offers `slug` for this row."""
        return True

    # --- helpers for actions ---------------------------------------------------------

    def context(self) -> AdminContext:
        return context_of(self)

    async def audit(self, request: Request, action: str, **fields: Any) -> None:
        await (
            self.context()
            .get(AuditTrail)
            .record(action, actor_id=actor_id(request), client=client_info(request), **fields)
        )

    def back_to_details(self, request: Request, pk: object) -> Response:
        url = request.url_for("admin:details", identity=self.identity, pk=str(pk))
        return RedirectResponse(url, status_code=303)


def refused(exc: DomainError) -> Response:
    """A core refusal as a page: the rule's own words, nothing changed."""
    if isinstance(exc, UnavailableError):
        return error_page(503, "Unavailable", exc.detail)
    status = 404 if exc.code.endswith("not_found") else 409
    return error_page(status, "Not done", exc.detail)

"""Jobs and dead letters (retry through `JobAdminService`, audited) and the audit log
(read-only, filterable by action and actor)."""

from __future__ import annotations

from typing import Any

from sqladmin import expose
from sqladmin.filters import AllUniqueStringValuesFilter, OperationColumnFilter
from starlette.requests import Request
from starlette.responses import Response

from adapters.sqlalchemy.records_audit import AuditRecord
from adapters.sqlalchemy.records_jobs import JobRecord
from core.platform.job_admin import JobAdminService
from core.shared.errors import DomainError
from entrypoints.admin.views.base import ReadOnlyView, identity, refused

DEAD = "dead"


@identity("jobs")
class JobView(ReadOnlyView, model=JobRecord):
    name = "Job"
    name_plural = "Jobs"
    icon = "fa-solid fa-gears"
    category = "Platform"
    column_exclude_list = [JobRecord.payload]
    column_filters = [AllUniqueStringValuesFilter(JobRecord.status)]
    column_searchable_list = [JobRecord.name]
    column_default_sort = [(JobRecord.id, True)]
    post_actions = [("retry", "Retry")]

    def post_action_allowed(self, model: Any, slug: str) -> bool:
        return getattr(model, "status", None) == DEAD

    @expose("/{pk:int}/retry", methods=["POST"])
    async def retry(self, request: Request) -> Response:
        job_id: int = request.path_params["pk"]
        try:
            await self.context().get(JobAdminService).retry_dead(job_id)
        except DomainError as exc:
            return refused(exc)
        await self.audit(request, "admin.job_retried", target_type="job", target_id=job_id)
        return self.back_to_details(request, job_id)


@identity("audit-log")
class AuditView(ReadOnlyView, model=AuditRecord):
    name = "Audit entry"
    name_plural = "Audit log"
    icon = "fa-solid fa-clipboard-list"
    category = "Platform"
    column_list = [
        AuditRecord.id,
        AuditRecord.occurred_at,
        AuditRecord.action,
        AuditRecord.outcome,
        AuditRecord.actor_id,
        AuditRecord.target_type,
        AuditRecord.target_id,
        AuditRecord.ip,
    ]
    column_filters = [
        AllUniqueStringValuesFilter(AuditRecord.action),
        OperationColumnFilter(AuditRecord.actor_id),
        AllUniqueStringValuesFilter(AuditRecord.outcome),
    ]
    column_searchable_list = [AuditRecord.action, AuditRecord.target_id]
    column_default_sort = [(AuditRecord.id, True)]

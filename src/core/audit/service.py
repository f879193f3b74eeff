"""Recording actions that no other service audits (operators' actions in the admin panel)."""

from __future__ import annotations

from core.audit.model import AuditEntry, AuditOutcome, DetailValue
from core.audit.ports import AuditUnitOfWorkFactory
from core.shared.clock import Clock
from core.shared.context import NO_CLIENT, ClientInfo
from core.shared.query import ListQuery, Page


class AuditTrail:
    """Rules: an entry is written in a transaction of its own, so it records what an
    operator did even when the action changed nothing in the database (a session ended
    in its store, a job queued again); every entry passes the audit model's secret
    guard, which refuses a detail that looks like a credential."""

    def __init__(self, uow: AuditUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def record(
        self,
        action: str,
        *,
        actor_id: int | None,
        target_type: str | None = None,
        target_id: str | int | None = None,
        client: ClientInfo = NO_CLIENT,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
        **details: DetailValue,
    ) -> AuditEntry:
        """Write one entry (`action` is a dotted name such as `admin.job_retried`)."""
        entry = AuditEntry(
            action=action,
            outcome=outcome,
            occurred_at=self._clock.now(),
            actor_id=actor_id,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            ip=client.ip,
            user_agent=client.user_agent,
            details=dict(details),
        )
        async with self._uow() as tx:
            await tx.audit.record(entry)
            await tx.commit()
        return entry

    async def entries(self, query: ListQuery) -> Page[AuditEntry]:
        """A page of the trail, newest first unless `query` sorts otherwise."""
        async with self._uow(read_only=True) as tx:
            return await tx.audit.list(query)

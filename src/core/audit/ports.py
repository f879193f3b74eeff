"""What the audit trail needs from the outside world."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol

from core.audit.model import AuditEntry
from core.shared.query import ListQuery, Page
from core.shared.unit_of_work import UnitOfWork


class AuditLog(Protocol):
    """Appends audit entries inside the caller's unit of work, and lists them.

    Contract: `record` writes in the current transaction, so an entry exists if and only
    if the change it describes commits (a failure being audited commits on its own).
    Entries are append-only: nothing here updates or deletes one. `list` filters on
    `action`, `outcome`, `actor_id`, `target_type`, `target_id`, `ip`, `occurred_at` with
    the shared query vocabulary, newest first by default (`-occurred_at`, then `-id`);
    `details` and `user_agent` are stored but not filtered or sorted on.
    - `record` re-checks the entry with the secret guard (`AuditEntry.check`) just before
      writing and raises `UnsafeAuditEntryError` (writing nothing) when a detail looks
      like a secret, so no row can ever hold a password, token, session id or hash.
    - `record` assigns no id visible to the caller; `list` returns entries with `id` set.
    Driver failures raise `UnavailableError`; a bad filter `InvalidQueryError`.
    """

    @abstractmethod
    async def record(self, entry: AuditEntry) -> None: ...

    @abstractmethod
    async def list(self, query: ListQuery) -> Page[AuditEntry]: ...


class AuditUnitOfWork(UnitOfWork, Protocol):
    """A transaction that can reach the audit trail (every context's unit of work can)."""

    audit: AuditLog


class AuditUnitOfWorkFactory(Protocol):
    """Opens a new `AuditUnitOfWork` per call (`read_only` as for the other contexts)."""

    @abstractmethod
    def __call__(self, *, read_only: bool = False) -> AuditUnitOfWork: ...

"""Records of the audit trail (`core.audit`): one append-only table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sqlalchemy.records import Base
from adapters.sqlalchemy.types import UTCDateTime
from core.audit.model import AuditOutcome

# Audit rows outnumber every other kind: 64-bit ids on Postgres. SQLite only
# autoincrements an `INTEGER PRIMARY KEY` (which is 64-bit there anyway).
AuditId = BigInteger().with_variant(Integer(), "sqlite")
# JSONB on Postgres (compact, indexable later); JSON text elsewhere.
AuditDetails = JSON().with_variant(JSONB(), "postgresql")

_OUTCOMES = ", ".join(f"'{outcome.value}'" for outcome in AuditOutcome)


class AuditRecord(Base):
    """One audited action (`core.audit.model.AuditEntry`). Rows are never updated."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(f"outcome IN ({_OUTCOMES})", name="outcome"),
        Index("ix_audit_log_occurred_at", "occurred_at"),
        Index("ix_audit_log_actor_id_occurred_at", "actor_id", "occurred_at"),
        Index("ix_audit_log_action_occurred_at", "action", "occurred_at"),
        Index("ix_audit_log_target_type_target_id", "target_type", "target_id"),
        {
            "comment": "Append-only trail of security- and money-relevant actions. "
            "Never holds a password, token, session id or hash."
        },
    )

    id: Mapped[int] = mapped_column(
        AuditId, primary_key=True, autoincrement=True, comment="Id of the entry."
    )
    occurred_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, comment="When the action happened (UTC)."
    )
    # No foreign key, on purpose: the trail is its own context and must outlive (and
    # never block the removal of) the rows it names.
    actor_id: Mapped[int | None] = mapped_column(
        Integer,
        nullable=True,
        comment="Id of the user who acted (users.id, not enforced); NULL when unknown.",
    )
    action: Mapped[str] = mapped_column(
        String(64), nullable=False, comment="Dotted action name, e.g. auth.login."
    )
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, comment="success or failure.")
    target_type: Mapped[str | None] = mapped_column(
        String(32), nullable=True, comment="Kind of the object acted on, e.g. user, session."
    )
    target_id: Mapped[str | None] = mapped_column(
        String(64), nullable=True, comment="Public id of the object acted on."
    )
    ip: Mapped[str | None] = mapped_column(
        String(64), nullable=True, comment="Client address the request came from."
    )
    user_agent: Mapped[str | None] = mapped_column(
        String(512), nullable=True, comment="Client User-Agent header, truncated."
    )
    details: Mapped[dict[str, Any]] = mapped_column(
        AuditDetails,
        nullable=False,
        default=dict,
        comment="Scalar facts (ids, reasons, counts); checked against secrets before writing.",
    )

"""What identity writes to the audit trail, and how.

Every entry names the actor (the user acting, when known), the target (`user` or
`session` and its public id), the client (address and user agent) and the outcome.
Details hold reasons and counts only; the audit model's guard refuses anything that
looks like a secret.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from core.audit.model import AuditEntry, AuditOutcome, DetailValue
from core.identity.ports import IdentityUnitOfWorkFactory
from core.shared.context import ClientInfo


class IdentityAction(StrEnum):
    LOGIN = "auth.login"
    LOGOUT = "auth.logout"
    LOGOUT_ALL = "auth.logout_all"
    SESSION_REVOKED = "auth.session_revoked"
    REGISTERED = "account.registered"
    DELETED = "account.deleted"
    PASSWORD_CHANGED = "account.password_changed"
    PASSWORD_RESET_REQUESTED = "account.password_reset_requested"
    PASSWORD_RESET = "account.password_reset"
    EMAIL_VERIFICATION_REQUESTED = "account.email_verification_requested"
    EMAIL_VERIFIED = "account.email_verified"
    TOKEN_ISSUED = "auth.token_issued"
    TOKEN_REFRESHED = "auth.token_refreshed"
    TOKEN_REUSED = "auth.token_reused"
    TOKEN_REVOKED = "auth.token_revoked"
    # An OAuth provider account was linked to a user (new account or verified email).
    OAUTH_LINKED = "account.oauth_linked"
    # Operators (the CLI, the admin panel): `actor_id` is the operator, when known.
    DEACTIVATED = "account.deactivated"
    REACTIVATED = "account.reactivated"
    SESSIONS_ENDED = "account.sessions_ended"
    SUPERUSER_CREATED = "account.superuser_created"
    # Billing put the user on another tier (a subscription, support, an override).
    TIER_CHANGED = "account.tier_changed"


def identity_entry(
    action: IdentityAction,
    *,
    now: datetime,
    client: ClientInfo,
    actor_id: int | None = None,
    user_id: int | None = None,
    session_id: int | None = None,
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
    **details: DetailValue,
) -> AuditEntry:
    """An entry about a user account (`user_id`) or one of its sessions (`session_id`)."""
    target_type: str | None = None
    target_id: str | None = None
    if session_id is not None:
        target_type, target_id = "session", str(session_id)
    elif user_id is not None:
        target_type, target_id = "user", str(user_id)
    return AuditEntry(
        action=action.value,
        outcome=outcome,
        occurred_at=now,
        actor_id=actor_id,
        target_type=target_type,
        target_id=target_id,
        ip=client.ip,
        user_agent=client.user_agent,
        details=dict(details),
    )


async def record_alone(uow: IdentityUnitOfWorkFactory, entry: AuditEntry) -> None:
    """Write one entry in a transaction of its own.

    For failures (nothing else commits with them) and for changes made outside the
    database (sessions live in their own store).
    """
    async with uow() as tx:
        await tx.audit.record(entry)
        await tx.commit()

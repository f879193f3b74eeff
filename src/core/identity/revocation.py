"""Ending every bearer token of a user: what logout-all, password change and reset, and
account deletion do besides ending browser sessions."""

from __future__ import annotations

from core.identity.ports import IdentityUnitOfWork
from core.shared.clock import Clock


async def end_all_tokens(
    tx: IdentityUnitOfWork, user_id: int, clock: Clock, *, keep_family: str | None = None
) -> int:
    """In the caller's unit of work: every access token of the user issued before now
    stops working, and every refresh token except those of `keep_family` is revoked.

    Returns how many refresh tokens were revoked. The user is locked first and the time
    read after, so a token issued concurrently (which locks the user too) is either
    issued before (and ended here) or after (and sees this change): never in between.
    Nothing is final before the caller commits.
    """
    await tx.users.lock(user_id)
    now = clock.now()
    await tx.users.end_tokens_before(user_id, now)
    return await tx.refresh_tokens.revoke_all_for_user(user_id, now, keep_family=keep_family)

"""Replies a crash left behind: closed so the conversation and the ledger agree."""

from __future__ import annotations

import logging
from datetime import timedelta

from core.billing.model import ReservationStatus
from core.billing.reservations import ReservationService
from core.conversations.model import Message, MessageState
from core.conversations.policy import ConversationPolicy
from core.conversations.ports import ConversationsUnitOfWorkFactory
from core.platform.jobs import Job
from core.shared.clock import Clock

SWEEP_STALE_REPLIES_JOB = "conversations.sweep_stale_replies"
SWEEP_BATCH = 100
# Past the longest a live send can take (its reservation's lifetime), this much more
# before its reply counts as abandoned: the send's own last steps are database writes.
GRACE_SECONDS = 60.0
INTERRUPTED = "reply_interrupted"

log = logging.getLogger("portico.conversations")


class ReplySweep:
    """Rules:
    - A reply still `reserved` longer than any live send can take (the model's timeout,
      the wait of a repeated send, and a grace) was abandoned by a process that died.
      It is marked `failed` with the error `reply_interrupted`.
    - Its reservation is closed as the reservation sweep would: settled to a usage
      recorded on it, else released (a send settles in the unit that saves the reply,
      so a reply a crash left `reserved` was never charged). The reply's
      `credits_charged` says which, so the conversation shows every charge.
    - Each reply is closed once, however many sweeps race (`finish` is conditional; the
      reservation's first close stands).
    """

    def __init__(
        self,
        uow: ConversationsUnitOfWorkFactory,
        reservations: ReservationService,
        clock: Clock,
        policy: ConversationPolicy,
    ) -> None:
        self._uow = uow
        self._reservations = reservations
        self._clock = clock
        self._policy = policy

    @property
    def abandoned_after(self) -> timedelta:
        return timedelta(
            seconds=self._policy.timeout_seconds + self._policy.reply_wait_seconds + GRACE_SECONDS
        )

    async def sweep(self) -> int:
        """Close the abandoned replies (a batch); returns how many this call closed."""
        before = self._clock.now() - self.abandoned_after
        async with self._uow(read_only=True) as tx:
            stale = await tx.messages.stale_reserved(before, SWEEP_BATCH)
        closed = 0
        for reply in stale:
            if await self._close(reply):
                closed += 1
        if closed:
            log.warning("replies_interrupted", extra={"closed": closed})
        return closed

    async def handle_sweep_stale_replies(self, _job: Job) -> None:
        """`SWEEP_STALE_REPLIES_JOB` (periodic)."""
        await self.sweep()

    async def _close(self, reply: Message) -> bool:
        charged = 0
        if reply.reservation_id is not None:
            reservation = await self._reservations.close_abandoned(reply.reservation_id)
            if reservation.status is ReservationStatus.SETTLED:
                charged = reservation.settled_amount or 0
        async with self._uow() as tx:
            finished = await tx.messages.finish(
                reply.copy(
                    state=MessageState.FAILED,
                    error=INTERRUPTED,
                    credits_charged=charged,
                    completed_at=self._clock.now(),
                )
            )
            await tx.commit()
        return finished is not None

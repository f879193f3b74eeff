"""The relay: committed jobs from the outbox to a runner."""

from __future__ import annotations

from dataclasses import dataclass

from core.platform.job_policy import JobPolicy
from core.platform.jobs import JobDispatcher, Outbox
from core.shared.clock import Clock
from core.shared.errors import UnavailableError


@dataclass(frozen=True, slots=True)
class RelayRound:
    """What one round did: jobs claimed, jobs the runner accepted, the round's limit."""

    claimed: int
    dispatched: int
    limit: int

    @property
    def more_waiting(self) -> bool:
        """True when the round was full, so another round may find more due jobs."""
        return self.limit > 0 and self.claimed == self.limit and self.dispatched == self.claimed


class JobRelay:
    """Moves committed, due jobs from the outbox to the runner behind a `JobDispatcher`.

    Rules:
    - A round claims at most `batch_size` jobs, and no more than the runner can take now
      (`JobDispatcher.capacity`). Due means: pending and available, or claimed/running
      with an expired lease. So the same round is also the sweep: a job whose runner
      died, or whose message the broker lost, goes out again once its lease expires.
    - Jobs are handed over oldest first. When the runner refuses one (broker down), the
      round stops; that job and the rest of the batch stay claimed until their lease
      expires and go out again then. The outbox never loses or duplicates a job.
    - Only committed jobs exist in the outbox, so nothing rolled back is ever relayed.
    """

    def __init__(
        self, outbox: Outbox, dispatcher: JobDispatcher, clock: Clock, policy: JobPolicy
    ) -> None:
        self._outbox = outbox
        self._dispatcher = dispatcher
        self._clock = clock
        self._policy = policy

    async def relay_once(self) -> RelayRound:
        """One round. Raises `UnavailableError` when the outbox cannot be reached."""
        capacity = self._dispatcher.capacity()
        limit = self._policy.batch_size
        if capacity is not None:
            limit = min(limit, capacity)
        if limit <= 0:
            return RelayRound(0, 0, 0)
        jobs = await self._outbox.claim(
            self._clock.now(), limit=limit, lease_seconds=self._policy.lease_seconds
        )
        dispatched = 0
        for job in jobs:
            try:
                await self._dispatcher.dispatch(job)
            except UnavailableError:
                break
            dispatched += 1
        return RelayRound(len(jobs), dispatched, limit)

"""Credit reservations: hold credits before a call whose cost is not known yet, then
settle to the cost or release; and the sweep that closes what a crash left behind."""

from __future__ import annotations

import logging
from datetime import timedelta

from core.billing.credits import CreditPolicy, insufficient, positive
from core.billing.errors import IdempotencyKeyTakenError, ReservationNotFoundError
from core.billing.model import (
    LedgerEntry,
    LedgerReason,
    Reservation,
    ReservationStatus,
    check_idempotency_key,
)
from core.billing.ports import BillingUnitOfWorkFactory
from core.platform.jobs import Job
from core.platform.telemetry import CreditMovement, Telemetry
from core.shared.clock import Clock
from core.shared.errors import RuleViolationError

logger = logging.getLogger(__name__)

SWEEP_RESERVATIONS_JOB = "billing.sweep_reservations"
SWEEP_BATCH = 100


class ReservationService:
    """Rules:
    - A reservation takes its amount from the balance at once (a ledger entry, so the
      balance still equals the sum of the ledger); settling keeps the cost (at most the
      amount) and gives back the rest, releasing gives back all. Either happens exactly
      once, however many callers (a request and the sweep) try: the first close wins,
      the others get the closed reservation.
    - The same idempotency key again returns the first reservation (another amount:
      `IdempotencyKeyTakenError`).
    - Expired reservations are closed by the sweep: settled to the usage recorded for
      them while held, or released when none was.
    - A settlement is reported as a spend of what it kept, once, after its commit
      (`Telemetry.credits_moved`); holding and giving back are not movements.
    """

    def __init__(
        self,
        uow: BillingUnitOfWorkFactory,
        clock: Clock,
        policy: CreditPolicy,
        telemetry: Telemetry,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._telemetry = telemetry

    async def reserve(
        self,
        user_id: int,
        amount: int,
        *,
        idempotency_key: str,
        source: str = "",
        ttl_seconds: int | None = None,
    ) -> Reservation:
        """Hold `amount` credits (taken from the balance now) until `settle` or
        `release`; `InsufficientCreditsError` and nothing held when they are not there."""
        positive(amount)
        check_idempotency_key(idempotency_key)
        try:
            return await self._reserve_once(user_id, amount, idempotency_key, source, ttl_seconds)
        except IdempotencyKeyTakenError:
            # A concurrent call with the same key committed first: its result is ours.
            async with self._uow(read_only=True) as tx:
                existing = await tx.reservations.find(user_id, idempotency_key)
            if existing is None or existing.amount != amount:
                raise
            return existing

    async def _reserve_once(
        self, user_id: int, amount: int, idempotency_key: str, source: str, ttl: int | None
    ) -> Reservation:
        now = self._clock.now()
        seconds = ttl if ttl is not None else self._policy.reservation_ttl_seconds
        async with self._uow() as tx:
            existing = await tx.reservations.find(user_id, idempotency_key)
            if existing is not None:
                if existing.amount != amount:
                    raise IdempotencyKeyTakenError()
                return existing
            reservation = await tx.reservations.add(
                Reservation(
                    user_id=user_id,
                    amount=amount,
                    idempotency_key=idempotency_key,
                    expires_at=now + timedelta(seconds=seconds),
                )
            )
            held = await tx.credits.apply(
                LedgerEntry(
                    user_id,
                    -amount,
                    LedgerReason.RESERVE,
                    f"reserve:{reservation.id}",
                    source=source,
                    reservation_id=reservation.id,
                )
            )
            if held is None:
                raise await insufficient(tx, user_id, amount, self._policy)
            await tx.commit()
        return reservation

    async def record_usage(self, reservation_id: int, usage: int) -> bool:
        """Note the cost while the reservation is held (so a crash before settling
        still settles to it); False when it is closed."""
        if usage < 0:
            raise RuleViolationError("Usage is 0 or more.")
        async with self._uow() as tx:
            recorded = await tx.reservations.record_usage(reservation_id, usage)
            await tx.commit()
        return recorded

    async def settle(self, reservation_id: int, cost: int) -> Reservation:
        """Keep `cost` (at most the amount held) and give back the rest."""
        if cost < 0:
            raise RuleViolationError("A cost is 0 or more.")
        return await self._close(reservation_id, ReservationStatus.SETTLED, cost)

    async def release(self, reservation_id: int) -> Reservation:
        """Give back everything held."""
        return await self._close(reservation_id, ReservationStatus.RELEASED, 0)

    async def close_abandoned(self, reservation_id: int) -> Reservation:
        """Close a reservation its caller will never close (a crash, a lost reply):
        settled to the usage recorded, else released. Returns it closed (the first
        close stands when it was closed already)."""
        async with self._uow(read_only=True) as tx:
            current = await tx.reservations.get(reservation_id)
        if current is None:
            raise ReservationNotFoundError()
        if current.status is not ReservationStatus.HELD:
            return current
        if current.usage is not None:
            return await self._close(reservation_id, ReservationStatus.SETTLED, current.usage)
        return await self._close(reservation_id, ReservationStatus.RELEASED, 0)

    async def sweep_expired(self) -> int:
        """Close reservations whose time ran out: settled to the usage recorded, else
        released. Returns how many this call closed (concurrent sweeps close each at
        most once between them)."""
        async with self._uow(read_only=True) as tx:
            expired = await tx.reservations.expired(self._clock.now(), SWEEP_BATCH)
        closed = 0
        for reservation in expired:
            assert reservation.id is not None
            if reservation.usage is not None:
                status, cost = ReservationStatus.SETTLED, reservation.usage
            else:
                status, cost = ReservationStatus.RELEASED, 0
            if await self._close_once(reservation.id, status, cost):
                closed += 1
        if closed:
            logger.info("reservations_swept", extra={"closed": closed})
        return closed

    async def handle_sweep_reservations(self, _job: Job) -> None:
        """`SWEEP_RESERVATIONS_JOB` (periodic)."""
        await self.sweep_expired()

    # --- internals ----------------------------------------------------------------

    async def _close(
        self, reservation_id: int, status: ReservationStatus, cost: int
    ) -> Reservation:
        closed = await self._close_once(reservation_id, status, cost)
        if closed is not None:
            return closed
        async with self._uow(read_only=True) as tx:
            current = await tx.reservations.get(reservation_id)
        if current is None:
            raise ReservationNotFoundError()
        return current  # closed already: the first close stands

    async def _close_once(
        self, reservation_id: int, status: ReservationStatus, cost: int
    ) -> Reservation | None:
        now = self._clock.now()
        async with self._uow() as tx:
            current = await tx.reservations.get(reservation_id)
            if current is None:
                raise ReservationNotFoundError()
            kept = min(cost, current.amount)
            closed = await tx.reservations.close(reservation_id, status, kept, now)
            if closed is None:
                return None
            rest = current.amount - kept
            if rest > 0:
                reason = (
                    LedgerReason.SETTLE
                    if status is ReservationStatus.SETTLED
                    else LedgerReason.RELEASE
                )
                returned = await tx.credits.apply(
                    LedgerEntry(
                        current.user_id,
                        rest,
                        reason,
                        f"{reason.value}:{reservation_id}",
                        reservation_id=reservation_id,
                    )
                )
                assert returned is not None  # a positive delta always applies
            await tx.commit()
        if status is ReservationStatus.SETTLED and kept > 0:
            self._telemetry.credits_moved(CreditMovement.SPEND, kept)
        return closed

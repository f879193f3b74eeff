"""Credit reservations: hold credits before a call whose cost is not known yet, then
settle to the cost or release; and the sweep that closes what a crash left behind."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
from core.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory
from core.platform.jobs import Job
from core.platform.telemetry import CreditMovement, Telemetry
from core.shared.clock import Clock
from core.shared.errors import RuleViolationError

logger = logging.getLogger(__name__)

SWEEP_RESERVATIONS_JOB = "billing.sweep_reservations"
SWEEP_BATCH = 100


@dataclass(frozen=True, slots=True)
class Closing:
    """A close tried inside a caller's unit: the reservation as it now stands, and
    whether this close made it (False: another closer came first, and its close stands)."""

    reservation: Reservation
    made: bool


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
            async with self._uow() as tx:
                existing = await tx.reservations.find(user_id, idempotency_key)
                if existing is not None:
                    if existing.amount != amount:
                        raise IdempotencyKeyTakenError()
                    return existing
                reservation = await self.hold(
                    tx,
                    user_id,
                    amount,
                    idempotency_key=idempotency_key,
                    source=source,
                    ttl_seconds=ttl_seconds,
                )
                await tx.commit()
            return reservation
        except IdempotencyKeyTakenError:
            # A concurrent call with the same key committed first: its result is ours.
            async with self._uow(read_only=True) as tx:
                existing = await tx.reservations.find(user_id, idempotency_key)
            if existing is None or existing.amount != amount:
                raise
            return existing

    async def hold(
        self,
        tx: BillingUnitOfWork,
        user_id: int,
        amount: int,
        *,
        idempotency_key: str,
        source: str = "",
        ttl_seconds: int | None = None,
    ) -> Reservation:
        """`reserve` inside the caller's unit, which commits it with its own writes (a
        message and the credits it holds, together). `IdempotencyKeyTakenError` when the
        user has a reservation with this key (also one a concurrent unit committed);
        `InsufficientCreditsError` when the credits are not there: then the unit is to be
        rolled back (the reservation's row is in it, without its credits)."""
        positive(amount)
        check_idempotency_key(idempotency_key)
        seconds = ttl_seconds if ttl_seconds is not None else self._policy.reservation_ttl_seconds
        reservation = await tx.reservations.add(
            Reservation(
                user_id=user_id,
                amount=amount,
                idempotency_key=idempotency_key,
                expires_at=self._clock.now() + timedelta(seconds=seconds),
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

    async def settle_in(
        self, tx: BillingUnitOfWork, reservation: Reservation, cost: int
    ) -> Closing:
        """`settle` inside the caller's unit (the reply and its charge commit together).
        The caller passes the closing to `report_closed` after its commit."""
        if cost < 0:
            raise RuleViolationError("A cost is 0 or more.")
        return await self._close_in(tx, reservation, ReservationStatus.SETTLED, cost)

    async def release_in(self, tx: BillingUnitOfWork, reservation: Reservation) -> Closing:
        """`release` inside the caller's unit; then `report_closed` after its commit."""
        return await self._close_in(tx, reservation, ReservationStatus.RELEASED, 0)

    def report_closed(self, closing: Closing) -> None:
        """Report a close made by `settle_in`/`release_in` once its unit committed."""
        kept = closing.reservation.settled_amount or 0
        if closing.made and closing.reservation.status is ReservationStatus.SETTLED and kept > 0:
            self._telemetry.credits_moved(CreditMovement.SPEND, kept)

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
        async with self._uow() as tx:
            current = await tx.reservations.get(reservation_id)
            if current is None:
                raise ReservationNotFoundError()
            closing = await self._close_in(tx, current, status, cost)
            if not closing.made:
                return None
            await tx.commit()
        self.report_closed(closing)
        return closing.reservation

    async def _close_in(
        self,
        tx: BillingUnitOfWork,
        current: Reservation,
        status: ReservationStatus,
        cost: int,
    ) -> Closing:
        """Close `current` (as the caller read it: its amount and user do not change)
        in `tx`, giving back what is not kept; not made when it was closed already."""
        assert current.id is not None
        kept = min(cost, current.amount)
        closed = await tx.reservations.close(current.id, status, kept, self._clock.now())
        if closed is None:
            now_closed = await tx.reservations.get(current.id)
            if now_closed is None:
                raise ReservationNotFoundError()
            return Closing(now_closed, made=False)
        rest = current.amount - kept
        if rest > 0:
            reason = (
                LedgerReason.SETTLE if status is ReservationStatus.SETTLED else LedgerReason.RELEASE
            )
            returned = await tx.credits.apply(
                LedgerEntry(
                    current.user_id,
                    rest,
                    reason,
                    f"{reason.value}:{current.id}",
                    reservation_id=current.id,
                )
            )
            assert returned is not None  # a positive delta always applies
        return Closing(closed, made=True)

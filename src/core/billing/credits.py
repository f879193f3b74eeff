"""The credit ledger's use cases: grant, spend, reserve -> settle or release, refund,
take back, and the sweep of expired reservations."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.billing.auditing import BillingAction, billing_entry
from core.billing.errors import (
    IdempotencyKeyTakenError,
    InsufficientCreditsError,
)
from core.billing.model import (
    LedgerEntry,
    LedgerReason,
    check_idempotency_key,
)
from core.billing.ports import BillingUnitOfWork, BillingUnitOfWorkFactory
from core.platform.telemetry import CreditMovement, Telemetry
from core.shared.clock import Clock
from core.shared.errors import RuleViolationError
from core.shared.query import Page, PageRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CreditPolicy:
    """Reservations expire `reservation_ttl_seconds` after they are made (the sweep then
    closes them); spends of at least `audit_spend_threshold` credits are audited
    (grants, refunds and reversals always are); refusals point at `upgrade_url`."""

    reservation_ttl_seconds: int = 15 * 60
    audit_spend_threshold: int = 1000
    upgrade_url: str | None = None


class CreditService:
    """Rules:
    - Every movement is one ledger entry, applied with a conditional update in the
      same transaction, so the balance never goes below zero and always equals the sum
      of its entries, whatever runs concurrently.
    - An idempotency key is unique per user: the same call again returns the first
      result and changes nothing; the same key for another amount or kind is
      `IdempotencyKeyTakenError`.
    - Every movement is reported once, after its commit (`Telemetry.credits_moved`:
      grant, spend, refund; a take-back is a reversal); a repeated call reports nothing.
    Reservations (hold now, settle or release later) are `ReservationService`'s.
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

    async def balance(self, user_id: int) -> int:
        async with self._uow(read_only=True) as tx:
            return await tx.credits.balance(user_id)

    async def history(self, user_id: int, page: PageRequest) -> tuple[int, Page[LedgerEntry]]:
        """The balance and a page of the ledger, newest first, read together."""
        async with self._uow(read_only=True) as tx:
            return await tx.credits.balance(user_id), await tx.credits.entries(user_id, page)

    async def grant(
        self,
        user_id: int,
        amount: int,
        *,
        idempotency_key: str,
        reason: LedgerReason = LedgerReason.GRANT,
        source: str = "",
        note: str = "",
        actor_id: int | None = None,
    ) -> LedgerEntry:
        """Add credits (support, promotions, a credit pack bought). Audited."""
        positive(amount)
        entry = LedgerEntry(user_id, amount, reason, idempotency_key, source=source, note=note)
        return await self._move(
            entry, BillingAction.CREDITS_GRANTED, actor_id, CreditMovement.GRANT
        )

    async def spend(
        self,
        user_id: int,
        amount: int,
        *,
        idempotency_key: str,
        source: str = "",
        note: str = "",
    ) -> LedgerEntry:
        """Take credits, or `InsufficientCreditsError` and nothing taken."""
        positive(amount)
        entry = LedgerEntry(
            user_id, -amount, LedgerReason.SPEND, idempotency_key, source=source, note=note
        )
        audited = amount >= self._policy.audit_spend_threshold
        audit = BillingAction.CREDITS_SPENT if audited else None
        return await self._move(entry, audit, None, CreditMovement.SPEND)

    async def refund(
        self,
        user_id: int,
        amount: int,
        *,
        idempotency_key: str,
        source: str = "",
        note: str = "",
        actor_id: int | None = None,
    ) -> LedgerEntry:
        """Give credits back (a service that failed after being paid for). Audited."""
        positive(amount)
        entry = LedgerEntry(
            user_id, amount, LedgerReason.REFUND, idempotency_key, source=source, note=note
        )
        return await self._move(
            entry, BillingAction.CREDITS_REFUNDED, actor_id, CreditMovement.REFUND
        )

    async def take_back(
        self,
        user_id: int,
        amount: int,
        *,
        idempotency_key: str,
        source: str = "",
        note: str = "",
        actor_id: int | None = None,
    ) -> LedgerEntry | None:
        """Take back up to `amount` (a refunded payment, an operator's correction): what
        the balance holds, never below zero; the entry says how much it took (None: the
        balance was 0, nothing written). Audited with what could not be taken back and
        who did it (`actor_id`, None for the system)."""
        async with self._uow() as tx:
            applied, new = await self._take_back_in(
                tx,
                user_id,
                amount,
                idempotency_key=idempotency_key,
                source=source,
                note=note,
                actor_id=actor_id,
            )
            await tx.commit()
        if applied is not None and new:
            self._telemetry.credits_moved(CreditMovement.REVERSAL, -applied.delta)
        return applied

    async def take_back_in(
        self,
        tx: BillingUnitOfWork,
        user_id: int,
        amount: int,
        *,
        idempotency_key: str,
        source: str = "",
        note: str = "",
        actor_id: int | None = None,
    ) -> LedgerEntry | None:
        """`take_back` inside the caller's unit of work (the caller commits, and reports
        the reversal once it has)."""
        applied, _ = await self._take_back_in(
            tx,
            user_id,
            amount,
            idempotency_key=idempotency_key,
            source=source,
            note=note,
            actor_id=actor_id,
        )
        return applied

    async def _take_back_in(
        self,
        tx: BillingUnitOfWork,
        user_id: int,
        amount: int,
        *,
        idempotency_key: str,
        source: str,
        note: str,
        actor_id: int | None,
    ) -> tuple[LedgerEntry | None, bool]:
        """The entry (None: nothing to take) and whether this call wrote it."""
        positive(amount)
        check_idempotency_key(idempotency_key)
        existing = await tx.credits.find(user_id, idempotency_key)
        if existing is not None:
            return existing, False
        taken = min(amount, await tx.credits.balance(user_id))
        if taken == 0:
            return None, False
        entry = LedgerEntry(
            user_id, -taken, LedgerReason.REVERSAL, idempotency_key, source=source, note=note
        )
        applied = await tx.credits.apply(entry)
        if applied is None:  # spent meanwhile by a unit that committed first
            raise InsufficientCreditsError(needed=taken, balance=0)
        await tx.audit.record(
            billing_entry(
                BillingAction.CREDITS_REVERSED,
                now=self._clock.now(),
                actor_id=actor_id,
                target_type="user",
                target_id=user_id,
                amount=taken,
                not_recovered=amount - taken,
                source=source or None,
            )
        )
        return applied, True

    # --- internals ----------------------------------------------------------------

    async def _move(
        self,
        entry: LedgerEntry,
        audit: BillingAction | None,
        actor_id: int | None,
        movement: CreditMovement,
    ) -> LedgerEntry:
        try:
            return await self._apply_once(entry, audit, actor_id, movement)
        except IdempotencyKeyTakenError:
            # A concurrent call with the same key committed first: its result is ours.
            async with self._uow(read_only=True) as tx:
                existing = await tx.credits.find(entry.user_id, entry.idempotency_key)
            if existing is None or not _same(existing, entry):
                raise
            return existing

    async def _apply_once(
        self,
        entry: LedgerEntry,
        audit: BillingAction | None,
        actor_id: int | None,
        movement: CreditMovement,
    ) -> LedgerEntry:
        async with self._uow() as tx:
            existing = await tx.credits.find(entry.user_id, entry.idempotency_key)
            if existing is not None:
                if not _same(existing, entry):
                    raise IdempotencyKeyTakenError()
                return existing
            applied = await tx.credits.apply(entry)
            if applied is None:
                raise await self._insufficient(tx, entry.user_id, -entry.delta)
            if audit is not None:
                await tx.audit.record(
                    billing_entry(
                        audit,
                        now=self._clock.now(),
                        actor_id=actor_id,
                        target_type="user",
                        target_id=entry.user_id,
                        amount=abs(entry.delta),
                        balance=applied.balance_after,
                        reason=entry.reason.value,
                        source=entry.source or None,
                    )
                )
            await tx.commit()
        self._telemetry.credits_moved(movement, abs(entry.delta))
        return applied

    async def _insufficient(
        self, tx: BillingUnitOfWork, user_id: int, needed: int
    ) -> InsufficientCreditsError:
        return await insufficient(tx, user_id, needed, self._policy)


async def insufficient(
    tx: BillingUnitOfWork, user_id: int, needed: int, policy: CreditPolicy
) -> InsufficientCreditsError:
    return InsufficientCreditsError(
        needed=needed, balance=await tx.credits.balance(user_id), upgrade_hint=policy.upgrade_url
    )


def positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise RuleViolationError("An amount of credits is a whole number, at least 1.")


def _same(existing: LedgerEntry, entry: LedgerEntry) -> bool:
    return existing.delta == entry.delta and existing.reason is entry.reason

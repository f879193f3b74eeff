"""Receiving the gateway's events: once each, whatever the order, duplication or
concurrency of deliveries; replaying one; reconciling the ones that never arrived."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from core.billing.plans import PlanService
from core.payments.auditing import PaymentAction, payment_entry
from core.payments.effects import Changed, EventEffects, Snapshot
from core.payments.errors import EventExistsError, EventNotFoundError
from core.payments.model import (
    CheckoutCompleted,
    EventOutcome,
    EventSource,
    GatewayEvent,
    InvoiceSettled,
    Reconciliation,
    StoredEvent,
    SubscriptionChanged,
)
from core.payments.policy import PaymentPolicy
from core.payments.ports import PaymentGateway, PaymentsUnitOfWorkFactory, WebhookVerifier
from core.platform.jobs import Job
from core.platform.telemetry import CreditMovement, Telemetry
from core.shared.clock import Clock
from core.shared.errors import ConflictError, DomainError, UnavailableError

RECONCILE_EVENTS_JOB = "payments.reconcile_events"
MAX_ERROR_LENGTH = 500

log = logging.getLogger("portico.payments")


@dataclass(frozen=True, slots=True)
class EventReceipt:
    """What became of a delivery: `duplicate` when the event was stored before."""

    event_id: str
    outcome: EventOutcome
    duplicate: bool = False


class PaymentEventService:
    """Rules:
    - An event takes effect once. Its id is stored under a unique constraint in the
      transaction of its effects; a repeated delivery, also a concurrent one, changes
      nothing and is acknowledged (the gateway stops retrying).
    - The order of deliveries does not matter: a subscription is read from the gateway
      when an event about it is applied (never taken from the event), an older read
      never overwrites a newer one, and payments only move forward (`EventEffects`).
    - A type Portico does not act on is stored and acknowledged (`ignored`).
    - An event that cannot be applied for a reason a retry would not fix (no such
      checkout, an unknown customer) is stored as `failed` with the reason, logged and
      acknowledged; `replay` applies it again once the cause is fixed. A dependency that
      is down (the database, the gateway) fails the delivery, so the gateway retries.
    - `reconcile` lists the gateway's events since the last run (or since a time) and
      applies the ones never received; it runs as a periodic job too.
    - Every delivery and reconciled event is reported with its type and outcome
      (applied, ignored, failed, duplicate, unavailable; a delivery that does not
      verify: type `unknown`, outcome `refused`), and the credits its effects moved
      once they are committed (`Telemetry`).
    """

    def __init__(
        self,
        uow: PaymentsUnitOfWorkFactory,
        gateway: PaymentGateway,
        verifier: WebhookVerifier,
        effects: EventEffects,
        plans: PlanService,
        clock: Clock,
        policy: PaymentPolicy,
        telemetry: Telemetry,
    ) -> None:
        self._telemetry = telemetry
        self._uow = uow
        self._gateway = gateway
        self._verifier = verifier
        self._effects = effects
        self._plans = plans
        self._clock = clock
        self._policy = policy

    async def receive(self, payload: bytes, signature: str | None) -> EventReceipt:
        """A webhook delivery: verified (`InvalidWebhookError`, nothing written), then
        applied."""
        try:
            event = self._verifier.verify(payload, signature, self._clock.now())
        except DomainError:
            self._telemetry.webhook_event("unknown", "refused")
            raise
        return await self.apply(event, EventSource.WEBHOOK)

    async def apply(self, event: GatewayEvent, source: EventSource) -> EventReceipt:
        """Store `event` and apply its effects, once."""
        try:
            receipt = await self._apply(event, source)
        except UnavailableError:
            self._telemetry.webhook_event(event.type, "unavailable")
            raise
        outcome = "duplicate" if receipt.duplicate else receipt.outcome.value
        self._telemetry.webhook_event(event.type, outcome)
        return receipt

    async def _apply(self, event: GatewayEvent, source: EventSource) -> EventReceipt:
        async with self._uow(read_only=True) as tx:
            stored = await tx.webhook_events.get(event.id)
        if stored is not None:
            return EventReceipt(event.id, stored.outcome, duplicate=True)
        snapshot = await self._snapshot(event)
        outcome = EventOutcome.APPLIED if event.subject is not None else EventOutcome.IGNORED
        record = StoredEvent(
            id=event.id,
            type=event.type,
            created=event.created,
            payload=event.payload,
            source=source,
            outcome=outcome,
            processed_at=self._clock.now(),
        )
        try:
            await self._commit(record, event, snapshot)
        except UnavailableError:
            raise
        except ConflictError as exc:
            if await self._stored(event.id):
                return EventReceipt(event.id, outcome, duplicate=True)
            return await self._failed(record, exc)
        except DomainError as exc:
            return await self._failed(record, exc)
        return EventReceipt(event.id, outcome)

    async def replay(self, event_id: str, *, actor_id: int | None = None) -> EventReceipt:
        """Apply a stored event's effects again (they are idempotent: an event that took
        effect changes nothing); an event never stored is fetched from the gateway and
        applied. `EventNotFoundError` when neither has it."""
        async with self._uow(read_only=True) as tx:
            stored = await tx.webhook_events.get(event_id)
        if stored is None:
            fetched = await self._gateway.get_event(event_id)
            if fetched is None:
                raise EventNotFoundError()
            return await self.apply(fetched, EventSource.RECONCILE)
        event = self._verifier.parse(stored.payload)
        snapshot = await self._snapshot(event)
        outcome = EventOutcome.APPLIED if event.subject is not None else EventOutcome.IGNORED
        async with self._uow() as tx:
            changed = await self._effects.apply(tx, event, snapshot)
            await tx.webhook_events.update(
                stored.copy(
                    outcome=outcome,
                    processed_at=self._clock.now(),
                    error=None,
                    attempts=stored.attempts + 1,
                )
            )
            for user_id in changed.users:
                await tx.audit.record(
                    payment_entry(
                        PaymentAction.EVENT_REPLAYED,
                        now=self._clock.now(),
                        user_id=user_id,
                        actor_id=actor_id,
                        event_type=event.type,
                    )
                )
            await tx.commit()
        self._report_credits(changed)
        for user_id in changed.users:
            await self._plans.forget_entitlements(user_id)
        return EventReceipt(event_id, outcome)

    async def reconcile(self, since: datetime | None = None) -> Reconciliation:
        """Apply the gateway's events created since `since` (default: where the last run
        ended, less an overlap; the first run looks back `first_reconcile_lookback`)."""
        now = self._clock.now()
        if since is None:
            async with self._uow(read_only=True) as tx:
                last = await tx.reconciliations.last()
            since = (
                last.until - self._policy.reconcile_overlap
                if last is not None
                else now - self._policy.first_reconcile_lookback
            )
        batch = self._policy.reconcile_batch
        events = await self._gateway.events_since(since, limit=batch)
        applied = 0
        for event in events:
            receipt = await self.apply(event, EventSource.RECONCILE)
            applied += not receipt.duplicate
        # A full batch may have more behind it: the next run starts at its last event.
        until = events[-1].created if len(events) >= batch else now
        async with self._uow() as tx:
            run = await tx.reconciliations.add(
                Reconciliation(since=since, until=until, found=len(events), applied=applied)
            )
            await tx.commit()
        if applied:
            log.warning("payment_events_reconciled", extra={"applied": applied})
        return run

    async def handle_reconcile_events(self, job: Job) -> None:
        """The `RECONCILE_EVENTS_JOB` handler (idempotent: events apply once)."""
        await self.reconcile()

    # --- internals --------------------------------------------------------------------

    async def _commit(
        self, record: StoredEvent, event: GatewayEvent, snapshot: Snapshot | None
    ) -> None:
        async with self._uow() as tx:
            await tx.webhook_events.add(record)
            changed = await self._effects.apply(tx, event, snapshot)
            await tx.commit()
        self._report_credits(changed)
        for user_id in changed.users:
            await self._plans.forget_entitlements(user_id)

    def _report_credits(self, changed: Changed) -> None:
        for recorded in changed.purchases:
            self._plans.report_granted(recorded)
        if changed.credits_reversed:
            self._telemetry.credits_moved(CreditMovement.REVERSAL, changed.credits_reversed)

    async def _failed(self, record: StoredEvent, exc: DomainError) -> EventReceipt:
        log.warning(
            "payment_event_failed",
            extra={"event_id": record.id, "event_type": record.type, "error": exc.code},
        )
        failed = record.copy(
            outcome=EventOutcome.FAILED, error=f"{exc.code}: {exc.detail}"[:MAX_ERROR_LENGTH]
        )
        try:
            async with self._uow() as tx:
                await tx.webhook_events.add(failed)
                await tx.commit()
        except EventExistsError:
            return EventReceipt(record.id, EventOutcome.APPLIED, duplicate=True)
        return EventReceipt(record.id, EventOutcome.FAILED)

    async def _stored(self, event_id: str) -> bool:
        async with self._uow(read_only=True) as tx:
            return await tx.webhook_events.get(event_id) is not None

    async def _snapshot(self, event: GatewayEvent) -> Snapshot | None:
        """The subscription the event is about, as the gateway has it now (read outside
        any transaction); for a subscription the gateway no longer knows, the event's."""
        subject = event.subject
        subscription_id = None
        if isinstance(subject, SubscriptionChanged):
            subscription_id = subject.subscription.id
        elif isinstance(subject, CheckoutCompleted | InvoiceSettled):
            subscription_id = subject.subscription_id
        if subscription_id is None:
            return None
        read_at = self._clock.now()
        current = await self._gateway.get_subscription(subscription_id)
        if current is None and isinstance(subject, SubscriptionChanged):
            return Snapshot(subject.subscription, event.created)
        return Snapshot(current, read_at) if current is not None else None

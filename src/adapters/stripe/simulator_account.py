"""The state of a simulated Stripe account: its objects, its event log, its test knobs
and the reads. `StripeSimulator` (simulator.py) adds the operations that change it."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from adapters.stripe import simulator_objects as shapes
from adapters.stripe.simulator_objects import SimulatorError, StripeObject, new_id
from core.shared.clock import Clock

MAX_LIST_LIMIT = 100
_CREATED_TESTS = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}


class SimulatorAccount:
    """Objects by id, events in the order emitted, and the knobs (see `StripeSimulator`).
    Every public method takes the account's lock and returns copies."""

    def __init__(self, clock: Clock, *, legacy_api: bool = False) -> None:
        self._clock = clock
        self._legacy = legacy_api
        self._lock = threading.RLock()
        self._prices: dict[str, StripeObject] = {}
        self._flexible_prices: set[str] = set()
        self._customers: dict[str, StripeObject] = {}
        self._sessions: dict[str, StripeObject] = {}
        # What a session sells: its price id and its `subscription_data[metadata]`.
        self._session_lines: dict[str, tuple[str, dict[str, str]]] = {}
        self._portals: dict[str, StripeObject] = {}
        self._subscriptions: dict[str, StripeObject] = {}
        self._invoices: dict[str, StripeObject] = {}
        self._intents: dict[str, StripeObject] = {}
        self._charges: dict[str, StripeObject] = {}
        self._events: list[StripeObject] = []
        self._event_ids: dict[str, StripeObject] = {}
        self._recordings: list[list[StripeObject]] = []
        self._failures: list[SimulatorError] = []
        self._decline_checkout = False

    # --- knobs ---------------------------------------------------------------------------

    def fail_next(self, error: SimulatorError | None = None, times: int = 1) -> None:
        """The next `times` API calls raise `error` (default: a card decline) and change
        nothing. Test helpers (completing checkouts, renewals, refunds) do not count."""
        with self._lock:
            self._failures.extend([error or SimulatorError.card_declined()] * times)

    def decline_next_checkout(self) -> None:
        """The next checkout completion is a declined card: it raises, the session stays
        open and nothing is emitted."""
        with self._lock:
            self._decline_checkout = True

    @contextmanager
    def recording(self) -> Iterator[list[StripeObject]]:
        """Collects copies of the events emitted inside the block. The block holds the
        account's lock, so they are this thread's events."""
        with self._lock:
            emitted: list[StripeObject] = []
            self._recordings.append(emitted)
            try:
                yield emitted
            finally:
                self._recordings.remove(emitted)

    def add_price(
        self,
        price_id: str,
        unit_amount: int,
        currency: str,
        *,
        interval: str | None = "month",
        flexible: bool = False,
    ) -> StripeObject:
        """A price of `unit_amount` minor units (`interval` None: one-time). A `flexible`
        price sells in either checkout mode (monthly in a subscription); Stripe's do not.
        Replaces any price with that id."""
        if isinstance(unit_amount, bool) or not isinstance(unit_amount, int) or unit_amount < 0:
            raise ValueError("a unit amount is a whole number of minor units, 0 or more")
        with self._lock:
            found = shapes.price(price_id, unit_amount, currency, interval, self._now())
            self._prices[price_id] = found
            if flexible:
                self._flexible_prices.add(price_id)
            else:
                self._flexible_prices.discard(price_id)
            return copy.deepcopy(found)

    def has_price(self, price_id: str) -> bool:
        with self._lock:
            return price_id in self._prices

    # --- reads ---------------------------------------------------------------------------

    def retrieve_customer(self, customer_id: str) -> StripeObject:
        with self._lock:
            self._api_call()
            return copy.deepcopy(self._get(self._customers, "customer", customer_id))

    def customer_ids(self) -> list[str]:
        """Every customer's id, oldest first."""
        with self._lock:
            return list(self._customers)

    def retrieve_checkout_session(self, session_id: str) -> StripeObject:
        with self._lock:
            self._api_call()
            return copy.deepcopy(self._get(self._sessions, "checkout.session", session_id))

    def hosted_checkout(self, session_id: str) -> tuple[StripeObject, StripeObject]:
        """What Stripe's hosted checkout page shows: the session and the price it sells
        (kept in its line items). Not an API call: the knobs do not apply."""
        with self._lock:
            session = self._get(self._sessions, "checkout.session", session_id)
            price = self._prices[self._session_lines[session_id][0]]
            return copy.deepcopy(session), copy.deepcopy(price)

    def retrieve_portal_session(self, portal_id: str) -> StripeObject:
        """What the hosted portal page shows (not an API call: the knobs do not apply)."""
        with self._lock:
            return copy.deepcopy(self._get(self._portals, "billing_portal.session", portal_id))

    def retrieve_subscription(self, subscription_id: str) -> StripeObject:
        with self._lock:
            self._api_call()
            return copy.deepcopy(self._subscription(subscription_id))

    def subscriptions_of(self, customer_id: str) -> list[StripeObject]:
        """The customer's subscriptions, newest first."""
        with self._lock:
            found = [s for s in self._subscriptions.values() if s["customer"] == customer_id]
            return copy.deepcopy(found[::-1])

    def retrieve_invoice(self, invoice_id: str) -> StripeObject:
        with self._lock:
            return copy.deepcopy(self._get(self._invoices, "invoice", invoice_id))

    def retrieve_payment_intent(self, intent_id: str) -> StripeObject:
        with self._lock:
            return copy.deepcopy(self._get(self._intents, "payment_intent", intent_id))

    def retrieve_charge(self, charge_id: str) -> StripeObject:
        with self._lock:
            return copy.deepcopy(self._get(self._charges, "charge", charge_id))

    def retrieve_event(self, event_id: str) -> StripeObject:
        with self._lock:
            self._api_call()
            return copy.deepcopy(self._get(self._event_ids, "event", event_id))

    def list_events(
        self,
        *,
        created: Mapping[str, int] | None = None,
        limit: int = 10,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> StripeObject:
        """One page of events, newest first, as `GET /v1/events` answers. `created` may
        hold `gt`, `gte`, `lt`, `lte` (unix seconds); `starting_after` pages on to older
        events, `ending_before` back to newer ones."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise SimulatorError.invalid("limit must be between 1 and 100.", param="limit")
        bounds = {op: int(value) for op, value in (created or {}).items()}
        if not set(bounds) <= set(_CREATED_TESTS):
            raise SimulatorError.invalid("Invalid created filter.", param="created")
        with self._lock:
            self._api_call()
            # Newest first; a cursor pages by position in the log, like Stripe's.
            position = {e["id"]: i for i, e in enumerate(self._events)}
            events = [
                e
                for e in reversed(self._events)
                if all(_CREATED_TESTS[op](e["created"], v) for op, v in bounds.items())
            ]
            if starting_after is not None:
                self._get(self._event_ids, "event", starting_after, param="starting_after")
                events = [e for e in events if position[e["id"]] < position[starting_after]]
                page = events[:limit]
            elif ending_before is not None:
                self._get(self._event_ids, "event", ending_before, param="ending_before")
                events = [e for e in events if position[e["id"]] > position[ending_before]]
                page = events[-limit:]
            else:
                page = events[:limit]
            return {
                "object": "list",
                "data": copy.deepcopy(page),
                "has_more": len(events) > len(page),
                "url": "/v1/events",
            }

    def events_since(self, since: datetime) -> list[StripeObject]:
        """Every event created at or after `since` (to the second), oldest first."""
        floor = int(since.timestamp())
        with self._lock:
            self._api_call()
            return copy.deepcopy([e for e in self._events if e["created"] >= floor])

    # --- internals (callers hold the lock) -----------------------------------------------

    def _now(self) -> int:
        return int(self._clock.now().timestamp())

    def _api_call(self) -> None:
        if self._failures:
            raise self._failures.pop(0)

    def _get(
        self,
        table: Mapping[str, StripeObject],
        kind: str,
        object_id: str,
        *,
        status: int = 404,
        param: str = "id",
    ) -> StripeObject:
        found = table.get(object_id)
        if found is None:
            if status == 400:
                raise SimulatorError.missing(kind, object_id, param)
            raise SimulatorError.not_found(kind, object_id, param)
        return found

    def _subscription(self, subscription_id: str) -> StripeObject:
        return self._get(self._subscriptions, "subscription", subscription_id)

    def _new_customer(
        self, email: str | None, name: str | None, metadata: Mapping[str, str] | None
    ) -> StripeObject:
        customer: StripeObject = {
            "id": new_id("cus"),
            "object": "customer",
            "created": self._now(),
            "email": email,
            "livemode": False,
            "metadata": dict(metadata or {}),
            "name": name,
        }
        self._customers[customer["id"]] = customer
        return customer

    def _emit(
        self, event_type: str, obj: StripeObject, previous: StripeObject | None = None
    ) -> None:
        event = shapes.event(event_type, copy.deepcopy(obj), self._now())
        if previous is not None:
            event["data"]["previous_attributes"] = copy.deepcopy(previous)
        self._events.append(event)
        self._event_ids[event["id"]] = event
        for recording in self._recordings:
            recording.append(copy.deepcopy(event))

    def _new_intent(
        self, customer: str | None, amount: int, currency: str, metadata: Mapping[str, str]
    ) -> StripeObject:
        intent = shapes.payment_intent(customer, amount, currency, self._now(), dict(metadata))
        self._intents[intent["id"]] = intent
        return intent

    def _charge(self, intent: StripeObject, *, announce: bool) -> StripeObject:
        """The intent succeeds with a charge (`charge.succeeded` when `announce`)."""
        charge = shapes.charge(intent, self._now())
        self._charges[charge["id"]] = charge
        intent.update(status="succeeded", amount_received=intent["amount"])
        intent["latest_charge"] = charge["id"]
        if announce:
            self._emit("charge.succeeded", charge)
        return charge

    def _new_invoice(self, sub: StripeObject, amount: int, reason: str) -> StripeObject:
        """An open invoice for `sub` (with a payment intent when there is money to take)."""
        intent = self._new_intent(sub["customer"], amount, sub["currency"], {}) if amount else None
        found = shapes.invoice(sub, amount, intent, reason, self._now(), legacy=self._legacy)
        self._invoices[found["id"]] = found
        sub["latest_invoice"] = found["id"]
        return found

    def _settle(self, found: StripeObject, *, paid: bool) -> None:
        """One payment attempt on an open invoice: `invoice.paid` or
        `invoice.payment_failed`. The charge of a paid invoice exists (a refund names it)
        but emits no event of its own here."""
        found["attempt_count"] += 1
        found["attempted"] = True
        payments = found["payments"]["data"]
        if paid:
            if payments:
                self._charge(
                    self._intents[payments[0]["payment"]["payment_intent"]], announce=False
                )
                payments[0]["status"] = "paid"
            found.update(status="paid", amount_paid=found["amount_due"], amount_remaining=0)
        self._emit("invoice.paid" if paid else "invoice.payment_failed", found)

"""`StripeSimulator`: a small Stripe account in memory, for the fake gateway and tests.

It holds Stripe-shaped dictionaries (customers, prices, checkout and portal sessions,
subscriptions, invoices, payment intents, charges, events) and changes them the way a
real account does, emitting the events Portico reads in the order Stripe emits them.
No SDK, no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from adapters.stripe import simulator_objects as shapes
from adapters.stripe.simulator_account import SimulatorAccount
from adapters.stripe.simulator_objects import SimulatorError, StripeObject, new_id

CHECKOUT_LIFETIME_SECONDS = 24 * 3600
RENEWABLE = frozenset({"active", "past_due", "trialing"})

__all__ = ["SimulatorError", "StripeObject", "StripeSimulator"]


class StripeSimulator(SimulatorAccount):
    """A Stripe account in memory; times come from the injected clock (unix seconds).

    Guarantees: every object returned is a copy; events are kept in the order emitted,
    each `created` from the clock, and lists answer newest first as Stripe does; unknown
    ids raise `SimulatorError` (404 `resource_missing`; 400 when a request names one),
    invalid requests `SimulatorError` (400). Ids are random (`cs_fake_...`). Thread-safe:
    the fake server calls it from its thread while a test calls it from another.

    API operations (what the gateways call): `create_customer`,
    `create_checkout_session`, `create_portal_session`, `update_subscription`,
    `cancel_subscription`, the `retrieve_*` reads and `list_events`. What happens outside
    the API (a customer paying, a renewal, a refund from the dashboard):
    `complete_checkout_session`, `fail_renewal`, `pay_renewal`, `refund_charge`, each
    returning the events it emitted. Knobs: `fail_next`, `decline_next_checkout`,
    `legacy_api` (see `SimulatorAccount` and `simulator_objects`).
    """

    def create_customer(
        self,
        *,
        email: str | None = None,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> StripeObject:
        with self._lock:
            self._api_call()
            return copy.deepcopy(self._new_customer(email, name, metadata))

    # --- checkout ------------------------------------------------------------------------

    def create_checkout_session(
        self,
        *,
        mode: str,
        price_id: str,
        url_base: str,
        success_url: str,
        cancel_url: str | None = None,
        customer: str | None = None,
        client_reference_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        subscription_metadata: Mapping[str, str] | None = None,
    ) -> StripeObject:
        """An open session selling one `price_id`; its `url` is `{url_base}/{id}`."""
        with self._lock:
            self._api_call()
            if mode not in ("payment", "subscription"):
                raise SimulatorError.invalid(f"Invalid mode: {mode!r}", param="mode")
            price = self._prices.get(price_id)
            if price is None:
                raise SimulatorError.missing("price", price_id, "line_items[0][price]")
            recurring = price["type"] == "recurring"
            if price_id not in self._flexible_prices and recurring != (mode == "subscription"):
                raise SimulatorError.invalid(
                    f"The price {price_id} is {price['type']}: it cannot be sold in {mode} mode.",
                    param="line_items[0][price]",
                )
            if customer is not None:
                self._get(self._customers, "customer", customer, status=400, param="customer")
            if not success_url:
                raise SimulatorError.invalid("Missing required param: success_url.")
            now, session_id = self._now(), new_id("cs")
            session = {
                "id": session_id,
                "object": "checkout.session",
                "amount_subtotal": price["unit_amount"],
                "amount_total": price["unit_amount"],
                "cancel_url": cancel_url,
                "client_reference_id": client_reference_id,
                "created": now,
                "currency": price["currency"],
                "customer": customer,
                "expires_at": now + CHECKOUT_LIFETIME_SECONDS,
                "livemode": False,
                "metadata": dict(metadata or {}),
                "mode": mode,
                "payment_intent": None,
                "payment_status": "unpaid",
                "status": "open",
                "subscription": None,
                "success_url": success_url,
                "url": f"{url_base.rstrip('/')}/{session_id}",
            }
            self._sessions[session_id] = session
            self._session_lines[session_id] = (price_id, dict(subscription_metadata or {}))
            return copy.deepcopy(session)

    def complete_checkout_session(self, session_id: str) -> list[StripeObject]:
        """The customer pays. Emits, in Stripe's order, for payment mode
        `charge.succeeded`, `checkout.session.completed`; for subscription mode
        `customer.subscription.created`, `invoice.paid`, `checkout.session.completed`.
        A session that is not open emits nothing."""
        with self.recording() as emitted:
            session = self._get(self._sessions, "checkout.session", session_id)
            if session["status"] != "open":
                return []
            if self._decline_checkout:
                self._decline_checkout = False
                raise SimulatorError.card_declined()
            price_id, subscription_metadata = self._session_lines[session_id]
            if session["customer"] is None and session["mode"] == "subscription":
                session["customer"] = self._new_customer(None, None, None)["id"]
            amount, now = session["amount_total"], self._now()
            if session["mode"] == "payment" and amount:
                intent = self._new_intent(
                    session["customer"], amount, session["currency"], session["metadata"]
                )
                self._charge(intent, announce=True)
                session["payment_intent"] = intent["id"]
            elif session["mode"] == "subscription":
                price = self._prices[price_id]
                interval = (price["recurring"] or {"interval": "month"})["interval"]
                sub = shapes.subscription(
                    session["customer"],
                    price,
                    now,
                    shapes.add_interval(now, interval),
                    subscription_metadata,
                    legacy=self._legacy,
                )
                self._subscriptions[sub["id"]] = sub
                self._emit("customer.subscription.created", sub)
                self._settle(self._new_invoice(sub, amount, "subscription_create"), paid=True)
                session["subscription"] = sub["id"]
            session["status"] = "complete"
            session["payment_status"] = "paid" if amount else "no_payment_required"
            self._emit("checkout.session.completed", session)
            return emitted

    def create_portal_session(
        self, *, customer: str, return_url: str | None, url_base: str
    ) -> StripeObject:
        """A customer portal session; its `url` is `{url_base}/{id}`."""
        with self._lock:
            self._api_call()
            self._get(self._customers, "customer", customer, status=400, param="customer")
            portal_id = new_id("bps")
            portal = {
                "id": portal_id,
                "object": "billing_portal.session",
                "created": self._now(),
                "customer": customer,
                "livemode": False,
                "return_url": return_url,
                "url": f"{url_base.rstrip('/')}/{portal_id}",
            }
            self._portals[portal_id] = portal
            return copy.deepcopy(portal)

    # --- subscription changes ------------------------------------------------------------

    def update_subscription(
        self,
        subscription_id: str,
        *,
        cancel_at_period_end: bool | None = None,
        price_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> StripeObject:
        """Changes what is given; `customer.subscription.updated` when anything changed
        (with `previous_attributes`). A canceled subscription takes metadata only."""
        with self._lock:
            self._api_call()
            sub = self._subscription(subscription_id)
            if sub["status"] == "canceled" and (
                cancel_at_period_end is not None or price_id is not None
            ):
                raise SimulatorError.invalid(
                    "A canceled subscription can only update its cancellation_details and metadata."
                )
            previous: StripeObject = {}
            if (
                cancel_at_period_end is not None
                and cancel_at_period_end != sub["cancel_at_period_end"]
            ):
                previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
                sub["cancel_at_period_end"] = cancel_at_period_end
                sub["cancel_at"] = (
                    sub["items"]["data"][0]["current_period_end"] if cancel_at_period_end else None
                )
                sub["canceled_at"] = self._now() if cancel_at_period_end else None
            if price_id is not None:
                self._change_price(sub, price_id, previous)
            if metadata is not None:
                merged = {**sub["metadata"], **metadata}
                if merged != sub["metadata"]:
                    previous["metadata"] = sub["metadata"]
                    sub["metadata"] = merged
            if previous:
                self._emit_updated(sub, previous)
            return copy.deepcopy(sub)

    def change_price(self, subscription_id: str, price_id: str) -> StripeObject:
        """The subscription moves to another recurring price (an upgrade or downgrade)."""
        return self.update_subscription(subscription_id, price_id=price_id)

    def cancel_subscription(self, subscription_id: str) -> StripeObject:
        """Ends it now: status `canceled`, `customer.subscription.deleted`."""
        with self._lock:
            self._api_call()
            sub = self._subscription(subscription_id)
            if sub["status"] == "canceled":
                raise SimulatorError.invalid(
                    f"The subscription {subscription_id} is canceled already."
                )
            now = self._now()
            sub.update(status="canceled", ended_at=now, canceled_at=sub["canceled_at"] or now)
            self._emit("customer.subscription.deleted", sub)
            return copy.deepcopy(sub)

    # --- outside the API: renewals and refunds -------------------------------------------

    def fail_renewal(self, subscription_id: str) -> list[StripeObject]:
        """A renewal whose payment fails. From `active`: the period rolls over, an invoice
        for it stays open, the subscription is `past_due` (`invoice.payment_failed`,
        `customer.subscription.updated`). When past due already: one more failed attempt
        on the open invoice (`invoice.payment_failed`)."""
        with self.recording() as emitted:
            sub = self._renewable(subscription_id)
            open_invoice = self._open_invoice(sub)
            if open_invoice is not None:
                self._settle(open_invoice, paid=False)
                return emitted
            previous = self._roll_period(sub)
            self._settle(
                self._new_invoice(sub, self._unit_amount(sub), "subscription_cycle"), paid=False
            )
            previous["status"] = sub["status"]
            sub["status"] = "past_due"
            self._emit_updated(sub, previous)
            return emitted

    def pay_renewal(self, subscription_id: str) -> list[StripeObject]:
        """A renewal that is paid: the open invoice of a past-due subscription, or a new
        period's. Emits `invoice.paid`, then `customer.subscription.updated` (active, the
        period advanced)."""
        with self.recording() as emitted:
            sub = self._renewable(subscription_id)
            found = self._open_invoice(sub)
            previous: StripeObject = {}
            if found is None:
                previous = self._roll_period(sub)
                found = self._new_invoice(sub, self._unit_amount(sub), "subscription_cycle")
            self._settle(found, paid=True)
            if sub["status"] != "active":
                previous["status"] = sub["status"]
                sub["status"] = "active"
            self._emit_updated(sub, previous)
            return emitted

    def refund_charge(self, charge_id: str, amount: int | None = None) -> list[StripeObject]:
        """Refunds `amount` minor units (all that is left when None): `charge.refunded`,
        whose `amount_refunded` is the total so far."""
        with self.recording() as emitted:
            charge = self._get(self._charges, "charge", charge_id, status=400, param="charge")
            left = charge["amount"] - charge["amount_refunded"]
            amount = left if amount is None else amount
            if left == 0:
                raise SimulatorError.invalid(
                    f"Charge {charge_id} has already been refunded.",
                    code="charge_already_refunded",
                )
            if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= left:
                raise SimulatorError.invalid(
                    f"Refund amount must be between 1 and {left}.", param="amount"
                )
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            self._emit("charge.refunded", charge)
            return emitted

    # --- internals (callers hold the lock) -----------------------------------------------

    def _change_price(self, sub: StripeObject, price_id: str, previous: StripeObject) -> None:
        price = self._prices.get(price_id)
        if price is None:
            raise SimulatorError.missing("price", price_id, "items[0][price]")
        if price["type"] != "recurring" and price_id not in self._flexible_prices:
            raise SimulatorError.invalid(
                f"The price {price_id} is not recurring.", param="items[0][price]"
            )
        item = sub["items"]["data"][0]
        if item["price"]["id"] != price_id:
            previous["items"] = copy.deepcopy(sub["items"])
            item["price"] = copy.deepcopy(price)

    def _renewable(self, subscription_id: str) -> StripeObject:
        sub = self._subscription(subscription_id)
        if sub["status"] not in RENEWABLE:
            raise SimulatorError.invalid(f"A {sub['status']} subscription does not renew.")
        if sub["cancel_at_period_end"]:
            raise SimulatorError.invalid("This subscription ends at the end of its period.")
        return sub

    def _open_invoice(self, sub: StripeObject) -> StripeObject | None:
        latest = self._invoices.get(sub["latest_invoice"] or "")
        return latest if latest is not None and latest["status"] == "open" else None

    def _unit_amount(self, sub: StripeObject) -> int:
        return int(sub["items"]["data"][0]["price"]["unit_amount"])

    def _roll_period(self, sub: StripeObject) -> StripeObject:
        """The next period starts where the last one ended; returns what it was."""
        item = sub["items"]["data"][0]
        start, end = item["current_period_start"], item["current_period_end"]
        interval = (item["price"]["recurring"] or {"interval": "month"})["interval"]
        shapes.set_period(sub, end, shapes.add_interval(end, interval), legacy=self._legacy)
        return {"items": {"data": [{"current_period_start": start, "current_period_end": end}]}}

    def _emit_updated(self, sub: StripeObject, previous: StripeObject) -> None:
        self._emit("customer.subscription.updated", sub, previous)

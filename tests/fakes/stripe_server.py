"""A fake Stripe API on 127.0.0.1, backed by a `StripeSimulator`, for integration tests of
`StripeGateway` through the real SDK (no stripe-mock can be installed here).

It speaks what the SDK sends and what Stripe answers: form-encoded bodies with nested
`a[b][0][c]` keys, `Authorization: Bearer <key>` (anything else is a 401), the
`Idempotency-Key` header (the same key on the same request replays the first answer
with `Idempotent-Replayed: true`; on another request it is a 400 `idempotency_error`),
Stripe-shaped objects and errors (`{"error": {"type", "code", "message", ...}}`).

Endpoints: POST /v1/customers, POST /v1/checkout/sessions, GET /v1/checkout/sessions/{id},
POST /v1/billing_portal/sessions, GET|POST|DELETE /v1/subscriptions/{id}, GET /v1/events
(`created[gte|gt|lte|lt]`, `limit`, `starting_after`, `ending_before`), GET /v1/events/{id}.
What happens outside the API (a customer paying, renewals, refunds) is done on
`server.simulator` directly: it is in this process.

Faults, each taken by the next API request(s): `fail_next(status, times, after=False)`
answers a Stripe `api_error` (with `after=True` the request runs first and its answer is
lost, as when a connection drops: the idempotency key keeps its result), `decline_next()`
a 402 `card_error`, `hang_next(seconds, times)` answers only after `seconds`.

    with running_fake_stripe(clock) as server:   # or the `fake_stripe` fixture
        gateway = StripeGateway(server.api_key, api_base=server.base_url)
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.memory.clock import ManualClock
from adapters.stripe.simulator import StripeSimulator
from adapters.stripe.simulator_objects import SimulatorError
from core.shared.clock import Clock
from tests.fakes.threaded_server import serving

API_KEY = "sk_test_fake_portico"


@dataclass(frozen=True)
class Fault:
    kind: str  # "error" | "error_after" | "decline" | "hang"
    status: int = 503
    seconds: float = 0.0


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, Any]


@dataclass
class _Stored:
    request: tuple[str, str, str]
    status: int
    body: dict[str, Any]


@dataclass
class FakeStripeServer:
    """The server's state; `base_url` is set once it listens."""

    simulator: StripeSimulator
    api_key: str = API_KEY
    base_url: str = ""
    closing: bool = False
    requests: list[Recorded] = field(default_factory=list)
    _faults: list[Fault] = field(default_factory=list)
    _idempotent: dict[str, _Stored] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- faults --------------------------------------------------------------------------

    def fail_next(self, status: int = 503, times: int = 1, *, after: bool = False) -> None:
        with self._lock:
            self._faults.extend([Fault("error_after" if after else "error", status)] * times)

    def decline_next(self) -> None:
        with self._lock:
            self._faults.append(Fault("decline", 402))

    def hang_next(self, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([Fault("hang", seconds=seconds)] * times)

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # --- the HTTP side -------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        params = nest(parse_qsl(request.url.query, keep_blank_values=True))
        if request.method == "POST":
            body = (await request.body()).decode("utf-8")
            params.update(nest(parse_qsl(body, keep_blank_values=True)))
        key = request.headers.get("idempotency-key")
        path = request.url.path
        with self._lock:
            self.requests.append(Recorded(request.method, path, key, params))
            fault = self._faults.pop(0) if self._faults else None
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            return _error(401, {"type": "invalid_request_error", "message": "Invalid API Key."})
        if fault is not None and fault.kind == "hang":
            # In small steps, so a server that is stopping does not wait for it.
            deadline = time.monotonic() + fault.seconds
            while time.monotonic() < deadline and not self.closing:
                await asyncio.sleep(0.02)
        elif fault is not None and fault.kind == "error":
            return _error(fault.status, {"type": "api_error", "message": "Simulated outage."})
        elif fault is not None and fault.kind == "decline":
            return _json(402, SimulatorError.card_declined().body())
        status, answer, replayed = self._answer(request.method, path, params, key)
        if fault is not None and fault.kind == "error_after":
            return _error(fault.status, {"type": "api_error", "message": "Simulated lost answer."})
        response = _json(status, answer)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    def _answer(
        self, method: str, path: str, params: dict[str, Any], key: str | None
    ) -> tuple[int, dict[str, Any], bool]:
        fingerprint = (method, path, json.dumps(params, sort_keys=True))
        with self._lock:
            stored = self._idempotent.get(key) if key else None
        if stored is not None:
            if stored.request != fingerprint:
                error = {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with.",
                }
                return 400, {"error": error}, False
            return stored.status, stored.body, True
        try:
            status, answer = 200, self._route(method, path, params)
        except SimulatorError as error:
            status, answer = error.status, error.body()
        if key and status < 500:  # a failure before the work began keeps no result
            with self._lock:
                self._idempotent.setdefault(key, _Stored(fingerprint, status, answer))
        return status, answer, False

    def _route(self, method: str, path: str, p: dict[str, Any]) -> dict[str, Any]:
        sim = self.simulator
        parts = path.strip("/").split("/")
        match (method, parts):
            case ("POST", ["v1", "customers"]):
                return sim.create_customer(
                    email=p.get("email"), name=p.get("name"), metadata=p.get("metadata")
                )
            case ("POST", ["v1", "checkout", "sessions"]):
                line = (p.get("line_items") or [{}])[0]
                return sim.create_checkout_session(
                    mode=p.get("mode", ""),
                    price_id=line.get("price", ""),
                    url_base=f"{self.base_url}/checkout",
                    success_url=p.get("success_url", ""),
                    cancel_url=p.get("cancel_url"),
                    customer=p.get("customer"),
                    client_reference_id=p.get("client_reference_id"),
                    metadata=p.get("metadata"),
                    subscription_metadata=(p.get("subscription_data") or {}).get("metadata"),
                )
            case ("GET", ["v1", "checkout", "sessions", session_id]):
                return sim.retrieve_checkout_session(session_id)
            case ("POST", ["v1", "billing_portal", "sessions"]):
                return sim.create_portal_session(
                    customer=p.get("customer", ""),
                    return_url=p.get("return_url"),
                    url_base=f"{self.base_url}/portal",
                )
            case ("GET", ["v1", "subscriptions", sub_id]):
                return sim.retrieve_subscription(sub_id)
            case ("POST", ["v1", "subscriptions", sub_id]):
                flag = p.get("cancel_at_period_end")
                items = p.get("items") or [{}]
                return sim.update_subscription(
                    sub_id,
                    cancel_at_period_end=None if flag is None else flag == "true",
                    price_id=items[0].get("price"),
                    metadata=p.get("metadata"),
                )
            case ("DELETE", ["v1", "subscriptions", sub_id]):
                return sim.cancel_subscription(sub_id)
            case ("GET", ["v1", "events"]):
                created = p.get("created")
                return sim.list_events(
                    created=created if isinstance(created, dict) else None,
                    limit=int(p.get("limit", 10)),
                    starting_after=p.get("starting_after"),
                    ending_before=p.get("ending_before"),
                )
            case ("GET", ["v1", "events", event_id]):
                return sim.retrieve_event(event_id)
        raise SimulatorError(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."
        )


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form pairs with bracketed keys (`line_items[0][price]=p`) as nested values; maps
    whose keys are all indexes become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        names = re.findall(r"[^\[\]]+", key) or [key]
        node = root
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node[names[-1]] = value
    return _listify(root)  # type: ignore[no-any-return]


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    values = {k: _listify(v) for k, v in node.items()}
    if values and all(k.isdigit() for k in values):
        return [values[k] for k in sorted(values, key=int)]
    return values


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Request-Id": f"req_fake_{time.monotonic_ns()}"},
    )


def _error(status: int, error: dict[str, Any]) -> Response:
    return _json(status, {"error": error})


@contextmanager
def running_fake_stripe(
    clock: Clock | None = None, *, legacy_api: bool = False
) -> Iterator[FakeStripeServer]:
    """The fake served by uvicorn in a background thread, on a port bound here."""
    server = FakeStripeServer(StripeSimulator(clock or ManualClock(), legacy_api=legacy_api))
    methods = ["GET", "POST", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", server.handle, methods=methods)])

    def stop() -> None:
        server.closing = True

    with serving(app, "fake Stripe server", on_stop=stop) as origin:
        server.base_url = f"{origin}"
        yield server


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripeServer]:
    """A fake Stripe server for one test (its simulator on a `ManualClock`)."""
    with running_fake_stripe() as server:
        yield server

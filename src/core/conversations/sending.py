"""Sending a message: the reply from the model, metered and charged exactly.

A send is two short transactions, and none is open while the model is called:
1. the conversation is the caller's; a repeated `client_message_id` returns the first
   result (waiting for it while it is being made). Then, in one unit: the
   entitlements (the `conversations` feature, the model's feature, one message and the
   prompt's tokens within the limits; the model has a price), the credits for the
   worst case (the estimated prompt and the most output) held under a key derived from
   the client message id (so two racing sends hold once: the second answers the
   first's reply), the user message and a `reserved` assistant message saved, the
   message counted. A refusal leaves nothing behind;
2. the model is called, with a timeout;
3. in one unit: the reservation settled to the cost (from the tokens the provider
   reports), the reply saved with that charge, the tokens counted. A failure marks the
   reply failed and releases the reservation, also in one unit. A crash between the
   units leaves a held reservation and a reserved reply: the reply sweep closes both
   (`maintenance.ReplySweep`), the expiry sweep any reservation without a reply.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from core.billing.entitlements import EntitlementService
from core.billing.errors import IdempotencyKeyTakenError, LimitReachedError
from core.billing.model import Entitlements, Reservation, ReservationStatus, model_feature
from core.billing.reservations import ReservationService
from core.conversations.conversations import owned
from core.conversations.errors import (
    MessageExistsError,
    ModelTimeoutError,
    ModelUnavailableError,
    PriceNotFoundError,
)
from core.conversations.model import (
    ChatDelta,
    ChatMessage,
    ChatParams,
    ChatUsage,
    Conversation,
    Message,
    MessageState,
    ModelPrice,
    Role,
)
from core.conversations.policy import ConversationPolicy
from core.conversations.ports import (
    ChatModel,
    ConversationsUnitOfWork,
    ConversationsUnitOfWorkFactory,
)
from core.conversations.repeats import FirstResults, SendResult
from core.conversations.streams import relay, single
from core.conversations.tokens import build_prompt, estimate_prompt
from core.identity.model import User
from core.platform.telemetry import CallOutcome, Telemetry
from core.shared.clock import Clock
from core.shared.errors import DomainError
from core.shared.ids import TokenGenerator

CONVERSATIONS_FEATURE = "conversations"
MESSAGES_LIMIT = "messages"
TOKENS_LIMIT = "tokens"
HISTORY_LIMIT = 200

log = logging.getLogger("portico.conversations")


@dataclass(frozen=True, slots=True)
class _Send:
    """A send that passed every check and holds its credits."""

    user: User
    conversation: Conversation
    prompt: list[ChatMessage]
    price: ModelPrice
    reservation: Reservation | None
    user_message: Message
    reply: Message
    granted: Entitlements


class MessageService:
    """Rules: see the module docstring. Also:
    - The model is never called inside a database transaction, and never twice for one
      client message id, however many sends race with it.
    - A streamed reply is read to its end by a task the response does not own: a
      client that goes away mid-stream still gets the whole reply saved and is charged
      by the usage the provider reports.
    - The charge is the cost in credits (`ConversationPolicy.credits_for`), never more
      than was reserved for the worst case.
    """

    def __init__(
        self,
        uow: ConversationsUnitOfWorkFactory,
        model: ChatModel,
        entitlements: EntitlementService,
        reservations: ReservationService,
        tokens: TokenGenerator,
        clock: Clock,
        policy: ConversationPolicy,
        telemetry: Telemetry,
    ) -> None:
        self._telemetry = telemetry
        self._uow = uow
        self._model = model
        self._entitlements = entitlements
        self._reservations = reservations
        self._tokens = tokens
        self._clock = clock
        self._policy = policy
        self._repeats = FirstResults(uow, policy)
        # Streams and cleanups in flight: kept referenced until they end (a task nobody
        # holds may be collected mid-flight).
        self._running: set[asyncio.Future[Any]] = set()

    async def send(
        self,
        user: User,
        conversation_id: int,
        content: str,
        *,
        client_message_id: str | None = None,
    ) -> SendResult:
        prepared = await self._prepare(user, conversation_id, content, client_message_id)
        if isinstance(prepared, SendResult):
            return prepared
        return await self._run(prepared, None)

    async def stream(
        self,
        user: User,
        conversation_id: int,
        content: str,
        *,
        client_message_id: str | None = None,
    ) -> AsyncIterator[ChatDelta | SendResult]:
        """The reply's deltas, then the `SendResult`. Everything that can refuse the
        send (ownership, entitlements, credits) raises before the first item; a model
        failure raises from the iterator after the deltas already sent."""
        prepared = await self._prepare(user, conversation_id, content, client_message_id)
        if isinstance(prepared, SendResult):
            return single(prepared)
        queue: asyncio.Queue[ChatDelta | None] = asyncio.Queue()
        task = asyncio.create_task(self._run(prepared, queue))
        self._keep(task)
        return relay(queue, task)

    def _keep(self, task: asyncio.Future[Any]) -> None:
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    # --- the steps ----------------------------------------------------------------------

    async def _prepare(
        self, user: User, conversation_id: int, content: str, client_message_id: str | None
    ) -> _Send | SendResult:
        assert user.id is not None
        granted = await self._entitlements.granted(user)  # the cache, before the unit
        key = client_message_id or self._tokens.token(16)
        try:
            async with self._uow() as tx:
                conversation = await owned(tx, user, conversation_id)
                first = None
                if client_message_id is not None:
                    first = await tx.messages.find_user_message(conversation_id, key)
                if first is None:
                    return await self._hold(tx, user, conversation, content, key, granted)
        except (IdempotencyKeyTakenError, MessageExistsError):
            # A send with this id won the race: its reply is ours.
            return await self._repeats.answer_to(conversation_id, key)
        return await self._repeats.answer(first)

    async def _hold(
        self,
        tx: ConversationsUnitOfWork,
        user: User,
        conversation: Conversation,
        content: str,
        key: str,
        granted: Entitlements,
    ) -> _Send:
        """Everything before the model call, in the caller's one unit (committed here):
        the checks, the credits held for the worst case, both messages saved, the
        message counted. A refusal leaves nothing of it."""
        assert user.id is not None and conversation.id is not None
        history = await tx.messages.history(conversation.id, HISTORY_LIMIT)
        price = await tx.model_prices.current(conversation.model, self._clock.now())
        prompt = build_prompt(
            conversation.system_prompt, history, content, self._policy.history_token_budget
        )
        estimated = estimate_prompt(prompt)
        await self._entitlements.admit_in(
            tx,
            granted,
            features=(CONVERSATIONS_FEATURE, model_feature(conversation.model)),
            limits={MESSAGES_LIMIT: 1, TOKENS_LIMIT: estimated},
        )
        if price is None:
            raise PriceNotFoundError()
        worst = self._policy.credits_for(price.cost(estimated, self._policy.max_output_tokens))
        reservation = None
        if worst > 0:
            reservation = await self._reservations.hold(
                tx,
                user.id,
                worst,
                idempotency_key=f"message:{conversation.id}:{key}",
                source=f"conversation:{conversation.id}",
                ttl_seconds=int(self._policy.reply_wait_seconds + self._policy.timeout_seconds),
            )
        now = self._clock.now()
        saved = await tx.messages.add(
            Message(
                conversation_id=conversation.id,
                user_id=user.id,
                role=Role.USER,
                content=content,
                client_message_id=key,
                created_at=now,
            )
        )
        reply = await tx.messages.add(
            Message(
                conversation_id=conversation.id,
                user_id=user.id,
                role=Role.ASSISTANT,
                state=MessageState.RESERVED,
                model=conversation.model,
                client_message_id=key,
                reply_to=saved.id,
                reservation_id=reservation.id if reservation else None,
                created_at=now,
            )
        )
        await tx.conversations.update(conversation.copy(updated_at=now))
        await self._entitlements.consume_in(tx, granted, MESSAGES_LIMIT, 1)
        await tx.commit()
        return _Send(user, conversation, prompt, price, reservation, saved, reply, granted)

    async def _run(self, send: _Send, deltas: asyncio.Queue[ChatDelta | None] | None) -> SendResult:
        params = ChatParams(
            max_output_tokens=self._policy.max_output_tokens,
            timeout_seconds=self._policy.timeout_seconds,
        )
        started = time.monotonic()
        usage: ChatUsage | None = None
        try:
            async with asyncio.timeout(self._policy.timeout_seconds):
                text, usage = await self._call(send, params, deltas)
        except TimeoutError:
            error: DomainError = ModelTimeoutError()
            await self._fail(send, error)
            raise error from None
        except DomainError as exc:
            await self._fail(send, exc)
            raise
        except asyncio.CancelledError:
            # Whoever cancelled us may cancel every later await too: the cleanup runs
            # in a task of its own.
            self._keep(asyncio.ensure_future(self._fail(send, ModelUnavailableError("cancelled"))))
            raise
        finally:
            if deltas is not None:
                deltas.put_nowait(None)
            self._meter(send, usage, time.monotonic() - started)
        latency_ms = int((time.monotonic() - started) * 1000)
        return await self._complete(send, text, usage, latency_ms)

    def _meter(self, send: _Send, usage: ChatUsage | None, seconds: float) -> None:
        """Report the model call: tokens and cost when it answered, else a failure."""
        model = send.conversation.model
        if usage is None:
            self._telemetry.llm_call(model, 0, 0, 0, seconds, CallOutcome.FAILED)
            return
        cost = send.price.cost(usage.input_tokens, usage.output_tokens)
        self._telemetry.llm_call(
            model, usage.input_tokens, usage.output_tokens, cost, seconds, CallOutcome.COMPLETED
        )

    async def _call(
        self, send: _Send, params: ChatParams, deltas: asyncio.Queue[ChatDelta | None] | None
    ) -> tuple[str, ChatUsage]:
        model = send.conversation.model
        if deltas is None:
            reply = await self._model.complete(send.prompt, model, params)
            return reply.text, reply.usage
        parts: list[str] = []
        usage: ChatUsage | None = None
        async for item in self._model.stream(send.prompt, model, params):
            if isinstance(item, ChatDelta):
                parts.append(item.text)
                deltas.put_nowait(item)
                # Let the response send it now: deltas that arrive together (one read of
                # a fast model's stream) would otherwise all wait for the last of them.
                await asyncio.sleep(0)
            else:
                usage = item
        if usage is None:
            raise ModelUnavailableError("The model reported no usage.")
        return "".join(parts), usage

    async def _complete(
        self, send: _Send, text: str, usage: ChatUsage, latency_ms: int
    ) -> SendResult:
        cost = send.price.cost(usage.input_tokens, usage.output_tokens)
        credits = self._policy.credits_for(cost)
        closing = None
        async with self._uow() as tx:
            if send.reservation is not None:
                closing = await self._reservations.settle_in(
                    tx, send.reservation, min(credits, send.reservation.amount)
                )
                closed = closing.reservation
                # Released by the expiry sweep first: nothing was kept.
                settled = closed.status is ReservationStatus.SETTLED
                credits = (closed.settled_amount or 0) if settled else 0
            finished = await tx.messages.finish(
                send.reply.copy(
                    content=text,
                    state=MessageState.COMPLETED,
                    model=usage.model or send.conversation.model,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost=cost,
                    credits_charged=credits,
                    latency_ms=latency_ms,
                    completed_at=self._clock.now(),
                )
            )
            try:
                await self._entitlements.consume_in(
                    tx, send.granted, TOKENS_LIMIT, usage.input_tokens + usage.output_tokens
                )
            except LimitReachedError:
                # The reply is made and paid for; the month's tokens are spent (the next
                # send is refused by the check before it).
                log.info("tokens_limit_passed", extra={"user_id": send.user.id})
            await tx.commit()
        if closing is not None:
            self._reservations.report_closed(closing)
        reply = finished if finished is not None else send.reply
        return SendResult(send.user_message, reply)

    async def _fail(self, send: _Send, error: DomainError) -> None:
        closing = None
        async with self._uow() as tx:
            await tx.messages.finish(
                send.reply.copy(
                    state=MessageState.FAILED,
                    error=error.code,
                    completed_at=self._clock.now(),
                )
            )
            if send.reservation is not None:
                closing = await self._reservations.release_in(tx, send.reservation)
            await tx.commit()
        if closing is not None:
            self._reservations.report_closed(closing)

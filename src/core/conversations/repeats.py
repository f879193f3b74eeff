"""A repeated send's answer: the first send's result, waited for while it is made."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from core.conversations.errors import ModelTimeoutError, ReplyFailedError
from core.conversations.model import Message, MessageState
from core.conversations.policy import ConversationPolicy
from core.conversations.ports import ConversationsUnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class SendResult:
    """A sent message and its reply."""

    user_message: Message
    reply: Message


class FirstResults:
    """Rules:
    - A send with a client message id a user message already has answers that
      message's reply once it is completed, polled (the send making it may run in
      another process), for at most `reply_wait_seconds` (then `ModelTimeoutError`).
    - A first send that failed (its reply failed, or it saved nothing) is
      `ReplyFailedError`: the client sends again with a new id.
    """

    def __init__(self, uow: ConversationsUnitOfWorkFactory, policy: ConversationPolicy) -> None:
        self._uow = uow
        self._policy = policy

    async def answer_to(self, conversation_id: int, key: str) -> SendResult:
        """The result of the send that saved the user message with this client id."""
        async with self._uow(read_only=True) as tx:
            first = await tx.messages.find_user_message(conversation_id, key)
        if first is None:  # the racing send failed before saving: nothing to return
            raise ReplyFailedError("The first send with this client_message_id failed.")
        return await self.answer(first)

    async def answer(self, user_message: Message) -> SendResult:
        """The reply to `user_message`, once it is made."""
        assert user_message.id is not None
        deadline = time.monotonic() + self._policy.reply_wait_seconds
        pause = 0.02
        while True:
            async with self._uow(read_only=True) as tx:
                reply = await tx.messages.reply_to(user_message.id)
            if reply is not None and reply.state is MessageState.COMPLETED:
                return SendResult(user_message, reply)
            if reply is None or reply.state is MessageState.FAILED:
                raise ReplyFailedError(
                    f"The first send with this client_message_id failed "
                    f"({reply.error if reply else 'unknown'}): send it with a new id."
                )
            if time.monotonic() > deadline:
                raise ModelTimeoutError("The first send with this id is still running.")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

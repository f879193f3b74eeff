"""Conversations and their messages, as their owner sees and changes them; usage."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from core.conversations.errors import ConversationNotFoundError
from core.conversations.model import Conversation, Message, UsageTotal, check_model_name
from core.conversations.policy import ConversationPolicy
from core.conversations.ports import ConversationsUnitOfWork, ConversationsUnitOfWorkFactory
from core.identity.model import User
from core.shared.clock import Clock
from core.shared.errors import RuleViolationError
from core.shared.query import Page, PageRequest


class ConversationService:
    """Rules:
    - A conversation is its owner's alone: another user's (or a deleted one) is "not
      found", never "forbidden", so ids reveal nothing.
    - A conversation without a model uses the policy's default model; whether the user
      may use a model is checked when a message is sent (an entitlement).
    - Deleting is soft: the messages stay for usage and audit, the conversation leaves
      every list.
    """

    def __init__(
        self, uow: ConversationsUnitOfWorkFactory, clock: Clock, policy: ConversationPolicy
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy

    async def create(
        self,
        user: User,
        *,
        title: str = "",
        model: str | None = None,
        system_prompt: str = "",
    ) -> Conversation:
        assert user.id is not None
        conversation = Conversation(
            user_id=user.id,
            model=check_model_name(model) if model is not None else self._policy.default_model,
            title=title.strip(),
            system_prompt=system_prompt,
        )
        async with self._uow() as tx:
            saved = await tx.conversations.add(conversation)
            await tx.commit()
        return saved

    async def get(self, user: User, conversation_id: int) -> Conversation:
        async with self._uow(read_only=True) as tx:
            return await owned(tx, user, conversation_id)

    async def list_for(self, user: User, page: PageRequest) -> Page[Conversation]:
        assert user.id is not None
        async with self._uow(read_only=True) as tx:
            return await tx.conversations.for_user(user.id, page)

    async def rename(self, user: User, conversation_id: int, title: str) -> Conversation:
        async with self._uow() as tx:
            conversation = await owned(tx, user, conversation_id)
            saved = await tx.conversations.update(
                conversation.copy(title=title.strip(), updated_at=self._clock.now())
            )
            await tx.commit()
        return saved

    async def delete(self, user: User, conversation_id: int) -> None:
        async with self._uow() as tx:
            conversation = await owned(tx, user, conversation_id)
            await tx.conversations.update(conversation.copy(deleted_at=self._clock.now()))
            await tx.commit()

    async def messages(self, user: User, conversation_id: int, page: PageRequest) -> Page[Message]:
        async with self._uow(read_only=True) as tx:
            await owned(tx, user, conversation_id)
            return await tx.messages.in_conversation(conversation_id, page)

    async def usage(
        self,
        user: User,
        *,
        since: datetime,
        until: datetime,
        group_by: Literal["model", "day"] = "model",
    ) -> list[UsageTotal]:
        """The user's completed replies in [since, until), summed per model or per day."""
        assert user.id is not None
        if until <= since:
            raise RuleViolationError("`until` must be after `since`.", field="until")
        async with self._uow(read_only=True) as tx:
            return await tx.messages.usage(user.id, since, until, group_by)


async def owned(tx: ConversationsUnitOfWork, user: User, conversation_id: int) -> Conversation:
    """The user's conversation that is not deleted, or `ConversationNotFoundError`."""
    conversation = await tx.conversations.get(conversation_id)
    if (
        conversation is None
        or conversation.user_id != user.id
        or conversation.deleted_at is not None
    ):
        raise ConversationNotFoundError()
    return conversation

"""Messages in process memory, transactional like the SQL table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Literal

from adapters.memory.payments import UserExists
from adapters.memory.pending_rows import PendingRows, RowTable, Unique
from adapters.memory.query import QueryEvaluator, dataclass_field_types
from core.conversations.errors import (
    ConversationNotFoundError,
    MessageExistsError,
    MessageNotFoundError,
)
from core.conversations.model import ChatMessage, Message, MessageState, Role, UsageTotal
from core.conversations.ports import MessageRepository
from core.identity.errors import UserNotFoundError
from core.shared.errors import ConflictError
from core.shared.query import Condition, ListQuery, Operator, Page, PageRequest, SortKey

ConversationExists = Callable[[int], Awaitable[bool]]

_MESSAGE_QUERIES = QueryEvaluator(dataclass_field_types(Message), pk="id")
_OLDEST_FIRST = (SortKey("id"),)
_RESERVED, _COMPLETED = MessageState.RESERVED, MessageState.COMPLETED


class InMemoryMessageState(RowTable[int, Message]):
    """The committed messages, by id."""


def _client_id(message: Message) -> Hashable | None:
    # The SQL partial unique index: user messages that carry a client id.
    if message.role is Role.USER and message.client_message_id is not None:
        return (message.conversation_id, message.client_message_id)
    return None


def _group(message: Message, group_by: Literal["model", "day"]) -> str:
    if group_by == "model":
        return message.model or ""
    assert message.created_at is not None
    return message.created_at.astimezone(UTC).strftime("%Y-%m-%d")


class InMemoryMessageRepository(PendingRows[int, Message], MessageRepository):
    """`MessageRepository` over an `InMemoryMessageState` (contract: the port).

    A user message's client id is unique per conversation (`MessageExistsError`), checked
    at `add` against what this unit sees and again at commit against what others
    committed meanwhile: of two units adding one, the second to commit fails and applies
    nothing. `conversation_exists`, `user_exists` and the messages themselves stand in
    for the foreign keys (`ConversationNotFoundError`, `UserNotFoundError`,
    `MessageNotFoundError`), checked after the unique index, as in SQL.

    `finish` locks the message until the unit ends, as the SQL UPDATE locks the row: a
    second finisher waits, then finds it no longer reserved and gets None, so exactly
    one wins however units interleave. `reply_to` returns the latest reply when there
    are several; usage groups sort by code point, as the SQL adapter sorts them.
    """

    def __init__(
        self,
        state: InMemoryMessageState,
        conversation_exists: ConversationExists,
        user_exists: UserExists,
    ) -> None:
        super().__init__(
            state,
            key=lambda message: message.id or 0,
            # Ids come from the table's sequence: never taken twice.
            exists_error=ConflictError,
            uniques=(Unique(_client_id, MessageExistsError),),
        )
        self._conversation_exists = conversation_exists
        self._user_exists = user_exists

    async def add(self, message: Message) -> Message:
        stored = message.copy(
            id=next(self._table.ids), created_at=message.created_at or datetime.now(UTC)
        )
        self._refuse_duplicate(stored)
        if not await self._conversation_exists(message.conversation_id):
            raise ConversationNotFoundError()
        if not await self._user_exists(message.user_id):
            raise UserNotFoundError()
        if message.reply_to is not None and self._get(message.reply_to) is None:
            raise MessageNotFoundError()
        return self._insert(stored)

    async def get(self, message_id: int) -> Message | None:
        return self._get(message_id)

    async def find_user_message(
        self, conversation_id: int, client_message_id: str
    ) -> Message | None:
        found = [
            m
            for m in self._rows()
            if m.conversation_id == conversation_id
            and m.client_message_id == client_message_id
            and m.role is Role.USER
        ]
        return min(found, key=lambda m: m.id or 0, default=None)

    async def reply_to(self, user_message_id: int) -> Message | None:
        replies = [m for m in self._rows() if m.reply_to == user_message_id]
        return max(replies, key=lambda m: m.id or 0, default=None)

    async def finish(self, message: Message) -> Message | None:
        key = message.id
        if key is None or self._get(key) is None:
            return None
        await self._hold(key)
        current = self._get(key)
        if current is None or current.state is not _RESERVED:
            return None
        return self._replace(
            current.copy(
                content=message.content,
                state=message.state,
                model=message.model,
                input_tokens=message.input_tokens,
                output_tokens=message.output_tokens,
                cost=message.cost,
                credits_charged=message.credits_charged,
                latency_ms=message.latency_ms,
                error=message.error,
                completed_at=message.completed_at,
            )
        )

    async def history(self, conversation_id: int, limit: int) -> list[ChatMessage]:
        if limit < 1:
            return []
        rows = self._rows()
        completed = [m for m in rows if m.conversation_id == conversation_id]
        completed = [m for m in completed if m.state is _COMPLETED]
        completed.sort(key=lambda m: m.id or 0)
        return [ChatMessage(m.role, m.content) for m in completed[-limit:]]

    async def in_conversation(self, conversation_id: int, page: PageRequest) -> Page[Message]:
        query = ListQuery(
            conditions=(Condition("conversation_id", Operator.EQ, conversation_id),),
            sort=_OLDEST_FIRST,
            page=page,
        )
        found = _MESSAGE_QUERIES.page(self._rows(), query)
        return Page(items=found.items, next_cursor=found.next_cursor)

    async def usage(
        self,
        user_id: int,
        since: datetime,
        until: datetime,
        group_by: Literal["model", "day"],
    ) -> list[UsageTotal]:
        if group_by not in ("model", "day"):
            raise ValueError(f"usage is grouped by model or day, not {group_by!r}")
        totals: dict[str, list[int]] = {}
        for m in self._rows():
            if (
                m.user_id == user_id
                and m.role is Role.ASSISTANT
                and m.state is _COMPLETED
                and m.created_at is not None
                and since <= m.created_at < until
            ):
                sums = totals.setdefault(_group(m, group_by), [0, 0, 0, 0, 0])
                for n, value in enumerate(
                    (m.input_tokens, m.output_tokens, m.cost, m.credits_charged, 1)
                ):
                    sums[n] += value
        return [
            UsageTotal(
                group=group,
                input_tokens=sums[0],
                output_tokens=sums[1],
                cost=sums[2],
                credits_charged=sums[3],
                messages=sums[4],
            )
            for group, sums in sorted(totals.items())
        ]

    async def stale_reserved(self, before: datetime, limit: int) -> list[Message]:
        stale = [
            m
            for m in self._rows()
            if m.state is _RESERVED and m.created_at is not None and m.created_at < before
        ]
        stale.sort(key=lambda m: (m.created_at, m.id or 0))
        return stale[: max(limit, 0)]

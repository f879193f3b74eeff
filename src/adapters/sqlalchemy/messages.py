"""The SQL side of messages: adds decided by a partial unique index, replies finished by
one conditional UPDATE, usage summed in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Row, Select, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.prepared import PerDialect
from adapters.sqlalchemy.records import UserRecord, utcnow
from adapters.sqlalchemy.records_conversations import (
    MESSAGES_CLIENT_ID_UNIQUE,
    MESSAGES_CONVERSATION_FK,
    MESSAGES_REPLY_TO_FK,
    MESSAGES_USER_FK,
    USER_MESSAGE_WITH_ID,
    ConversationRecord,
    MessageRecord,
)
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.returning import returning
from adapters.sqlalchemy.upsert import upsert_insert
from core.conversations.errors import (
    ConversationNotFoundError,
    MessageExistsError,
    MessageNotFoundError,
)
from core.conversations.model import ChatMessage, Message, MessageState, Role, UsageTotal
from core.conversations.ports import MessageRepository
from core.identity.errors import UserNotFoundError
from core.shared.errors import DomainError
from core.shared.query import Condition, ListQuery, Operator, Page, PageRequest, SortKey

MESSAGE_CONSTRAINT_ERRORS: ConstraintErrors = {
    MESSAGES_CLIENT_ID_UNIQUE: MessageExistsError,
    MESSAGES_CONVERSATION_FK: ConversationNotFoundError,
    MESSAGES_USER_FK: UserNotFoundError,
    MESSAGES_REPLY_TO_FK: MessageNotFoundError,
}

_messages = cast(Table, MessageRecord.__table__)
_OLDEST_FIRST = (SortKey("id"),)
_ROLES = {role.value: role for role in Role}
_RESERVED = MessageState.RESERVED.value
_COMPLETED = MessageState.COMPLETED.value

# The statements of a send, built once (`prepared`).
_ADD = PerDialect(
    lambda dialect: (
        upsert_insert(dialect, _messages)
        .on_conflict_do_nothing(
            index_elements=[_messages.c.conversation_id, _messages.c.client_message_id],
            index_where=USER_MESSAGE_WITH_ID,
        )
        .returning(*_messages.c)
    )
)
_FINISH = (
    update(_messages)
    .where(_messages.c.id == bindparam("b_id"), _messages.c.state == _RESERVED)
    .returning(*_messages.c)
)
_HISTORY = (
    select(_messages.c.role, _messages.c.content)
    .where(
        _messages.c.conversation_id == bindparam("b_conversation_id"),
        _messages.c.state == _COMPLETED,
    )
    .order_by(_messages.c.id.desc())
    .limit(bindparam("b_limit"))
)


def _to_message(record: MessageRecord | Row[Any]) -> Message:
    return Message(
        id=record.id,
        conversation_id=record.conversation_id,
        user_id=record.user_id,
        role=Role(record.role),
        content=record.content,
        state=MessageState(record.state),
        model=record.model,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cost=record.cost,
        credits_charged=record.credits_charged,
        latency_ms=record.latency_ms,
        client_message_id=record.client_message_id,
        reply_to=record.reply_to,
        reservation_id=record.reservation_id,
        error=record.error,
        created_at=record.created_at,
        completed_at=record.completed_at,
    )


def _reply(message: Message) -> dict[str, Any]:
    """The columns `finish` writes."""
    return {
        "content": message.content,
        "state": message.state.value,
        "model": message.model,
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "cost": message.cost,
        "credits_charged": message.credits_charged,
        "latency_ms": message.latency_ms,
        "error": message.error,
        "completed_at": message.completed_at,
    }


class SqlAlchemyMessageRepository(MessageRepository):
    """`MessageRepository` on `messages` (contract: the port).

    `add` is one `INSERT ... ON CONFLICT DO NOTHING RETURNING` on the partial unique
    index on (conversation_id, client_message_id) of user messages, which decides
    races: on Postgres a concurrent add waits for the first unit, then inserts nothing
    if it committed (`MessageExistsError`, the unit still usable) or goes through if it
    rolled back; the unit of work maps a violation surfacing at commit to the same
    error. A missing conversation, user or replied-to message is
    `ConversationNotFoundError`, `UserNotFoundError` or `MessageNotFoundError` (the
    foreign keys), and the unit is to be rolled back (no savepoint: a send pays for
    none).

    `finish` is one `UPDATE ... WHERE id = :id AND state = 'reserved' RETURNING`: a
    concurrent finisher waits for the row lock, then the condition, evaluated again on
    the committed row, lets exactly one through. `reply_to` returns the latest reply
    when there are several. `usage` groups and sums in SQL; a day is the UTC date of
    `created_at` (`YYYY-MM-DD`); groups sort by their bytes on every backend.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, MessageRecord, constraint_errors=MESSAGE_CONSTRAINT_ERRORS
        )

    @property
    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name

    async def _first(self, statement: Select[Any]) -> Message | None:
        with database_errors():
            row = (await self._session.execute(statement.limit(1))).first()
        return _to_message(row) if row is not None else None

    async def _all(self, statement: Select[Any], limit: int) -> list[Message]:
        if limit < 1:
            return []
        with database_errors():
            rows = (await self._session.execute(statement.limit(limit))).all()
        return [_to_message(row) for row in rows]

    async def _missing_reference(self, message: Message) -> DomainError:
        """The row a foreign key SQLite reports without its name failed to find,
        looked for in the order Postgres checks the keys."""
        checks: list[tuple[Select[Any], type[DomainError]]] = [
            (
                select(ConversationRecord.id).where(
                    ConversationRecord.id == message.conversation_id
                ),
                ConversationNotFoundError,
            ),
            (select(UserRecord.id).where(UserRecord.id == message.user_id), UserNotFoundError),
        ]
        if message.reply_to is not None:
            checks.append(
                (
                    select(MessageRecord.id).where(MessageRecord.id == message.reply_to),
                    MessageNotFoundError,
                )
            )
        with database_errors():
            for statement, error in checks:
                if (await self._session.execute(statement)).first() is None:
                    return error()
        return MessageNotFoundError()

    async def add(self, message: Message) -> Message:
        # A taken client message id inserts nothing (no error, no savepoint: the unit
        # goes on); a missing reference raises, and the unit is then rolled back.
        parameters = {
            "conversation_id": message.conversation_id,
            "user_id": message.user_id,
            "role": message.role.value,
            "client_message_id": message.client_message_id,
            "reply_to": message.reply_to,
            "reservation_id": message.reservation_id,
            "created_at": message.created_at or utcnow(),
            **_reply(message),
        }

        async def missing_reference() -> DomainError:
            return await self._missing_reference(message)

        row = await returning(
            self._session,
            _ADD(self._dialect),
            MESSAGE_CONSTRAINT_ERRORS,
            parameters=parameters,
            missing_reference=missing_reference,
        )
        if row is None:
            raise MessageExistsError()
        return _to_message(row)

    async def get(self, message_id: int) -> Message | None:
        record = await self._records.get(message_id)
        return _to_message(record) if record is not None else None

    async def find_user_message(
        self, conversation_id: int, client_message_id: str
    ) -> Message | None:
        # The partial unique index's condition, so Postgres can use it.
        return await self._first(
            select(_messages).where(
                _messages.c.conversation_id == conversation_id,
                _messages.c.client_message_id == client_message_id,
                _messages.c.role == Role.USER.value,
            )
        )

    async def reply_to(self, user_message_id: int) -> Message | None:
        return await self._first(
            select(_messages)
            .where(_messages.c.reply_to == user_message_id)
            .order_by(_messages.c.id.desc())
        )

    async def finish(self, message: Message) -> Message | None:
        row = await returning(
            self._session,
            _FINISH,
            MESSAGE_CONSTRAINT_ERRORS,
            parameters={"b_id": message.id, **_reply(message)},
        )
        return _to_message(row) if row is not None else None

    async def history(self, conversation_id: int, limit: int) -> list[ChatMessage]:
        if limit < 1:
            return []
        # Two columns, no `Message` per row: this is read on every send, and a long
        # conversation is hundreds of rows.
        parameters = {"b_conversation_id": conversation_id, "b_limit": limit}
        with database_errors():
            rows = (await self._session.execute(_HISTORY, parameters)).all()
        return [ChatMessage(_ROLES[role], content) for role, content in reversed(rows)]

    async def in_conversation(self, conversation_id: int, page: PageRequest) -> Page[Message]:
        query = ListQuery(
            conditions=(Condition("conversation_id", Operator.EQ, conversation_id),),
            sort=_OLDEST_FIRST,
            page=page,
        )
        found = await self._records.list(query)
        return Page(
            items=[_to_message(record) for record in found.items], next_cursor=found.next_cursor
        )

    def _group(self, group_by: Literal["model", "day"]) -> ColumnElement[str]:
        created_at = _messages.c.created_at
        if group_by == "model":
            group: ColumnElement[str] = func.coalesce(_messages.c.model, "")
        elif group_by == "day" and self._dialect == "postgresql":
            group = func.to_char(func.timezone("UTC", created_at), "YYYY-MM-DD")
        elif group_by == "day":
            # SQLite keeps UTC text without an offset (`UTCDateTime`): its date is the day.
            group = func.strftime("%Y-%m-%d", created_at)
        else:
            raise ValueError(f"usage is grouped by model or day, not {group_by!r}")
        # Groups sort by their bytes, as in Python: a Postgres database with a
        # linguistic collation would otherwise skip `-` and `_` when comparing.
        return group.collate("C") if self._dialect == "postgresql" else group

    async def usage(
        self,
        user_id: int,
        since: datetime,
        until: datetime,
        group_by: Literal["model", "day"],
    ) -> list[UsageTotal]:
        group = self._group(group_by).label("grp")
        statement = (
            select(
                group,
                func.sum(_messages.c.input_tokens),
                func.sum(_messages.c.output_tokens),
                func.sum(_messages.c.cost),
                func.sum(_messages.c.credits_charged),
                func.count(),
            )
            .where(
                _messages.c.user_id == user_id,
                _messages.c.state == _COMPLETED,
                _messages.c.role == Role.ASSISTANT.value,
                _messages.c.created_at >= since,
                _messages.c.created_at < until,
            )
            .group_by(group)
            .order_by(group)
        )
        with database_errors():
            rows = (await self._session.execute(statement)).all()
        # Postgres sums BIGINT as NUMERIC (a Decimal here).
        return [
            UsageTotal(
                group=str(label),
                input_tokens=int(input_tokens),
                output_tokens=int(output_tokens),
                cost=int(cost),
                credits_charged=int(credits),
                messages=int(count),
            )
            for label, input_tokens, output_tokens, cost, credits, count in rows
        ]

    async def stale_reserved(self, before: datetime, limit: int) -> list[Message]:
        return await self._all(
            select(_messages)
            .where(_messages.c.state == _RESERVED, _messages.c.created_at < before)
            .order_by(_messages.c.created_at, _messages.c.id),
            limit,
        )

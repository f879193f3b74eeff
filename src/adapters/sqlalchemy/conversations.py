"""The SQL side of conversations (messages are in `messages.py`, model prices in
`model_prices.py`).

Writes are single statements with `RETURNING`, so what a repository returns is what the
database stored.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sqlalchemy.errors import ConstraintErrors, database_errors
from adapters.sqlalchemy.records import utcnow
from adapters.sqlalchemy.records_conversations import CONVERSATIONS_USER_FK, ConversationRecord
from adapters.sqlalchemy.repository import SqlAlchemyRepository
from adapters.sqlalchemy.returning import returning, user_not_found
from core.conversations.errors import ConversationNotFoundError
from core.conversations.model import Conversation
from core.conversations.ports import ConversationRepository
from core.identity.errors import UserNotFoundError
from core.shared.query import Condition, ListQuery, Operator, Page, PageRequest, SortKey

CONVERSATION_CONSTRAINT_ERRORS: ConstraintErrors = {
    CONVERSATIONS_USER_FK: UserNotFoundError,
}

_conversations = cast(Table, ConversationRecord.__table__)
_RECENT_FIRST = (SortKey("updated_at", descending=True), SortKey("id", descending=True))
# Built once (`prepared`): every send reads its conversation and updates it.
_GET = select(_conversations).where(_conversations.c.id == bindparam("b_id"))
# The SET clause is the columns of the parameters.
_UPDATE = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("b_id"))
    .returning(*_conversations.c)
)


def _to_conversation(record: ConversationRecord | Row[Any]) -> Conversation:
    return Conversation(
        id=record.id,
        user_id=record.user_id,
        model=record.model,
        title=record.title,
        system_prompt=record.system_prompt,
        created_at=record.created_at,
        updated_at=record.updated_at,
        deleted_at=record.deleted_at,
    )


class SqlAlchemyConversationRepository(ConversationRepository):
    """`ConversationRepository` on `conversations` (contract: the port).

    `add` stamps `created_at` and `updated_at` alike (an unknown user:
    `UserNotFoundError`). `get` finds deleted conversations too; `for_user` leaves them
    out and pages by (`updated_at`, id), newest first. `update` writes the caller's
    `updated_at` (now when it is None) and `deleted_at`, in one `UPDATE ... RETURNING`
    (an unknown id: `ConversationNotFoundError`).
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._records = SqlAlchemyRepository(
            session, ConversationRecord, constraint_errors=CONVERSATION_CONSTRAINT_ERRORS
        )

    async def add(self, conversation: Conversation) -> Conversation:
        now = utcnow()
        statement = (
            insert(_conversations)
            .values(
                user_id=conversation.user_id,
                model=conversation.model,
                title=conversation.title,
                system_prompt=conversation.system_prompt,
                deleted_at=conversation.deleted_at,
                created_at=now,
                updated_at=now,
            )
            .returning(*_conversations.c)
        )
        row = await returning(
            self._session,
            statement,
            CONVERSATION_CONSTRAINT_ERRORS,
            missing_reference=user_not_found,
        )
        assert row is not None
        return _to_conversation(row)

    async def get(self, conversation_id: int) -> Conversation | None:
        with database_errors():
            result = await self._session.execute(_GET, {"b_id": conversation_id})
        row = result.first()
        return _to_conversation(row) if row is not None else None

    async def for_user(self, user_id: int, page: PageRequest) -> Page[Conversation]:
        query = ListQuery(
            conditions=(Condition("user_id", Operator.EQ, user_id),), sort=_RECENT_FIRST, page=page
        )
        found = await self._records.list(query)
        return Page(
            items=[_to_conversation(record) for record in found.items],
            next_cursor=found.next_cursor,
        )

    async def update(self, conversation: Conversation) -> Conversation:
        parameters = {
            "b_id": conversation.id,
            "title": conversation.title,
            "system_prompt": conversation.system_prompt,
            "updated_at": conversation.updated_at or utcnow(),
            "deleted_at": conversation.deleted_at,
        }
        row = await returning(
            self._session, _UPDATE, CONVERSATION_CONSTRAINT_ERRORS, parameters=parameters
        )
        if row is None:
            raise ConversationNotFoundError()
        return _to_conversation(row)

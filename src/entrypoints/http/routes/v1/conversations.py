"""Conversations with a model: create, list, read, rename, delete; messages, sent as
JSON or streamed as server-sent events; the caller's usage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from core.conversations.conversations import ConversationService
from core.conversations.model import ChatDelta
from core.conversations.repeats import SendResult
from core.conversations.sending import MessageService
from core.shared.clock import Clock
from core.shared.errors import DomainError
from core.shared.query import PageRequest
from entrypoints.http.context import get_runtime, require_principal, service
from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse, no_content
from entrypoints.http.errors import domain_error_body
from entrypoints.http.schemas.billing import PageQuery
from entrypoints.http.schemas.conversations import (
    ConversationCreate,
    ConversationList,
    ConversationRead,
    ConversationUpdate,
    MessageCreate,
    MessageList,
    MessageRead,
    SendRead,
    UsageList,
    UsageQuery,
    UsageTotalRead,
)
from entrypoints.http.schemas.problem import Problem

group = EndpointGroup(tags=("conversations",))

CONVERSATION = "/api/v1/conversations/{conversation_id:int}"
# Comment lines keep proxies and clients from timing the stream out while the model
# thinks.
HEARTBEAT_SECONDS = 15


@group.post("/api/v1/conversations", access=Access.SESSION, responses={201: ConversationRead})
async def create_conversation(request: Request, json: ConversationCreate) -> Response:
    """A new conversation (the default model when `model` is unset)."""
    user = require_principal(request).user
    conversation = await service(request, ConversationService).create(
        user, title=json.title, model=json.model, system_prompt=json.system_prompt
    )
    return ModelResponse(ConversationRead.from_conversation(conversation), status_code=201)


@group.get("/api/v1/conversations", access=Access.SESSION, responses={200: ConversationList})
async def list_conversations(request: Request, query: PageQuery) -> Response:
    """The caller's conversations, most recently active first."""
    user = require_principal(request).user
    page = await service(request, ConversationService).list_for(
        user, PageRequest(limit=query.limit, cursor=query.cursor)
    )
    items = [ConversationRead.from_conversation(c) for c in page.items]
    return ModelResponse(ConversationList(items=items, next_cursor=page.next_cursor))


@group.get(CONVERSATION, access=Access.SESSION, responses={200: ConversationRead, 404: Problem})
async def read_conversation(request: Request) -> Response:
    """One of the caller's conversations; 404 for anyone else's."""
    user = require_principal(request).user
    conversation = await service(request, ConversationService).get(
        user, request.path_params["conversation_id"]
    )
    return ModelResponse(ConversationRead.from_conversation(conversation))


@group.patch(CONVERSATION, access=Access.SESSION, responses={200: ConversationRead, 404: Problem})
async def rename_conversation(request: Request, json: ConversationUpdate) -> Response:
    user = require_principal(request).user
    conversation = await service(request, ConversationService).rename(
        user, request.path_params["conversation_id"], json.title
    )
    return ModelResponse(ConversationRead.from_conversation(conversation))


@group.delete(CONVERSATION, access=Access.SESSION, responses={204: None, 404: Problem})
async def delete_conversation(request: Request) -> Response:
    """Soft delete: it leaves every list; its messages stay for usage."""
    user = require_principal(request).user
    await service(request, ConversationService).delete(user, request.path_params["conversation_id"])
    return no_content()


@group.get(
    f"{CONVERSATION}/messages", access=Access.SESSION, responses={200: MessageList, 404: Problem}
)
async def list_messages(request: Request, query: PageQuery) -> Response:
    """The conversation's messages, oldest first."""
    user = require_principal(request).user
    page = await service(request, ConversationService).messages(
        user,
        request.path_params["conversation_id"],
        PageRequest(limit=query.limit, cursor=query.cursor),
    )
    items = [MessageRead.from_message(m) for m in page.items]
    return ModelResponse(MessageList(items=items, next_cursor=page.next_cursor))


@group.post(
    f"{CONVERSATION}/messages",
    access=Access.SESSION,
    responses={201: SendRead, 402: Problem, 404: Problem, 409: Problem, 429: Problem},
    event_stream=True,
)
async def send_message(request: Request, json: MessageCreate) -> Response:
    """Send a message; the model's reply comes back with its usage and charge. With
    `Accept: text/event-stream`: `delta` events (`{"text"}`), then `done` (the body of
    the JSON answer) or `error` (a problem). A repeated `client_message_id` returns the
    first result and charges once. 402 `insufficient_credits` (the worst case is
    reserved first), 403 `feature_not_in_tier` (the model too is an entitlement), 429
    `limit_reached`, 503 when the model is down or too slow."""
    user = require_principal(request).user
    messages = service(request, MessageService)
    conversation_id = request.path_params["conversation_id"]
    if "text/event-stream" in request.headers.get("accept", ""):
        events = await messages.stream(
            user, conversation_id, json.content, client_message_id=json.client_message_id
        )
        return EventStream(_sse(events), ping=HEARTBEAT_SECONDS)
    result = await messages.send(
        user, conversation_id, json.content, client_message_id=json.client_message_id
    )
    return ModelResponse(SendRead.build(result.user_message, result.reply), status_code=201)


class EventStream(EventSourceResponse):
    """Server-sent events (documented as a `text/event-stream` answer)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # spectree reads a response's `body` to validate it, and a stream has none. Set
        # after the headers are made: before, Starlette would send `content-length: 0`.
        self.body = b""


async def _sse(events: AsyncIterator[ChatDelta | SendResult]) -> AsyncIterator[dict[str, Any]]:
    try:
        async for item in events:
            if isinstance(item, ChatDelta):
                yield {"event": "delta", "data": orjson.dumps({"text": item.text}).decode()}
            else:
                done = SendRead.build(item.user_message, item.reply)
                yield {"event": "done", "data": done.model_dump_json()}
    except DomainError as exc:
        yield {"event": "error", "data": orjson.dumps(domain_error_body(exc)).decode()}


@group.get("/api/v1/usage", access=Access.SESSION, responses={200: UsageList, 422: Problem})
async def read_usage(request: Request, query: UsageQuery) -> Response:
    """The caller's tokens, cost and credits per model or per day (`?group_by=`), over
    `[since, until)` (default: the last 30 days)."""
    user = require_principal(request).user
    until = query.until or get_runtime(request).get(Clock).now()
    since = query.since or until - timedelta(days=30)
    totals = await service(request, ConversationService).usage(
        user, since=since, until=until, group_by=query.group_by
    )
    return ModelResponse(UsageList(items=[UsageTotalRead.from_total(t) for t in totals]))

"""A fake OpenAI-compatible chat completions server on 127.0.0.1, for integration tests of
`OpenAIChatModel` through the real SDK.

`POST /v1/chat/completions` answers as OpenAI does: a `chat.completion` object, or with
`"stream": true` server-sent events (`data: {chunk}\\n\\n`): a first chunk with the
role, one chunk per token of content, a chunk with the `finish_reason`, then, when
`stream_options.include_usage` is set, a usage chunk whose `choices` is empty (every
other chunk carries `"usage": null`), then `data: [DONE]`. `Authorization: Bearer
<api_key>` is required (else a 401 `invalid_api_key`).

Replies are deterministic: `reply_text` when set, else "You said: <last user message>";
at most `max_completion_tokens` (or `max_tokens`) tokens, exactly that many with
`reply_at_max_output` (padded with "lorem"). Tokens: the text cut at word boundaries
(each word with the whitespace after it); prompt tokens `ceil(chars / 4) + 4` per message.
`omit_usage` drops usage from every answer; `chunk_delay_seconds` paces each chunk.

Faults, each taken by the next request(s): `fail_next(status, times, retry_after=,
code=, message=)` answers an OpenAI-shaped error; `hang_next(seconds, after_deltas=)`
stalls before answering (or mid-stream after that many deltas); `cut_next(after_deltas)`
closes the connection mid-answer; `content_filter_next(after_deltas)` ends the reply with
`finish_reason: "content_filter"`.

    with running_fake_openai() as server:      # or the `fake_openai` fixture
        model = OpenAIChatModel(base_url=server.base_url, api_key=server.api_key)
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.threaded_server import serving

API_KEY = "sk-fake-portico"
_TOKEN = re.compile(r"\s+|\S+\s*")


@dataclass(frozen=True)
class Fault:
    kind: str  # "error" | "hang" | "cut" | "content_filter"
    status: int = 500
    retry_after: str | None = None
    code: str | None = None
    message: str = "Simulated failure."
    seconds: float = 0.0
    after_deltas: int | None = None


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    path: str
    authorization: str | None
    body: dict[str, Any]


@dataclass
class FakeOpenAIServer:
    """The server's state; `base_url` (ending in `/v1`) is set once it listens."""

    api_key: str = API_KEY
    base_url: str = ""
    reply_text: str | None = None
    reply_at_max_output: bool = False
    omit_usage: bool = False
    chunk_delay_seconds: float = 0.0
    closing: bool = False
    requests: list[Recorded] = field(default_factory=list)
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- faults --------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        times: int = 1,
        *,
        retry_after: str | None = None,
        code: str | None = None,
        message: str = "Simulated failure.",
    ) -> None:
        fault = Fault("error", status, retry_after, code, message)
        self._add([fault] * times)

    def hang_next(self, seconds: float, times: int = 1, *, after_deltas: int | None = None) -> None:
        self._add([Fault("hang", seconds=seconds, after_deltas=after_deltas)] * times)

    def cut_next(self, after_deltas: int, times: int = 1) -> None:
        self._add([Fault("cut", after_deltas=after_deltas)] * times)

    def content_filter_next(self, after_deltas: int = 0) -> None:
        self._add([Fault("content_filter", after_deltas=after_deltas)])

    def _add(self, faults: list[Fault]) -> None:
        with self._lock:
            self._faults.extend(faults)

    # --- the HTTP side -------------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        auth = request.headers.get("authorization")
        body = json.loads(await request.body())
        with self._lock:
            self.requests.append(Recorded(request.url.path, auth, body))
            fault = self._faults.pop(0) if self._faults else None
        if auth != f"Bearer {self.api_key}":
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        if fault is not None and fault.kind == "error":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return _error(fault.status, fault.code, fault.message, headers)
        if fault is not None and fault.kind == "hang" and fault.after_deltas is None:
            await self._sleep(fault.seconds)
        tokens, finish = self._reply(body)
        if fault is not None and fault.kind == "content_filter":
            tokens, finish = tokens[: fault.after_deltas], "content_filter"
        usage = self._usage(body, tokens)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = self._chunks(body["model"], tokens, finish, usage if include_usage else None)
            if fault is not None and fault.kind == "cut":
                return _CutStream([c async for c in chunks][: 1 + (fault.after_deltas or 0)])
            stall = fault if fault is not None and fault.kind == "hang" else None
            return StreamingResponse(self._paced(chunks, stall), media_type="text/event-stream")
        message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
        answer = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": usage,
        }
        if fault is not None and fault.kind == "cut":
            encoded = json.dumps(answer).encode()
            return _CutStream([encoded[: len(encoded) // 2]], length=len(encoded))
        return JSONResponse(answer)

    def _reply(self, body: dict[str, Any]) -> tuple[list[str], str]:
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 1_000_000
        if self.reply_text is not None:
            text = self.reply_text
        else:
            users = [m["content"] for m in body["messages"] if m["role"] == "user"]
            text = "You said: " + (users[-1] if users else "(nothing)")
        tokens: list[str] = _TOKEN.findall(text)
        if self.reply_at_max_output:
            return (tokens + [" lorem"] * limit)[:limit], "length"
        return tokens[:limit], "length" if len(tokens) > limit else "stop"

    def _usage(self, body: dict[str, Any], tokens: list[str]) -> dict[str, int] | None:
        if self.omit_usage:
            return None
        prompt = sum(-(-len(m["content"]) // 4) + 4 for m in body["messages"])
        return {
            "prompt_tokens": prompt,
            "completion_tokens": len(tokens),
            "total_tokens": prompt + len(tokens),
        }

    async def _chunks(
        self, model: str, tokens: list[str], finish: str, usage: dict[str, int] | None
    ) -> AsyncIterator[bytes]:
        """The SSE events of a streamed answer (the first one carries the role)."""
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None, choices: bool = True) -> bytes:
            data: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
                if choices
                else [],
            }
            if usage is not None:
                data["usage"] = None if choices else usage
            return f"data: {json.dumps(data)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""}, None)
        for token in tokens:
            yield chunk({"content": token}, None)
        yield chunk({}, finish)
        if usage is not None:
            yield chunk({}, None, choices=False)
        yield b"data: [DONE]\n\n"

    async def _paced(
        self, chunks: AsyncIterator[bytes], stall: Fault | None
    ) -> AsyncIterator[bytes]:
        sent = -1  # the role chunk is not a delta
        async for data in chunks:
            if stall is not None and sent == stall.after_deltas:
                await self._sleep(stall.seconds)
            if self.chunk_delay_seconds:
                await self._sleep(self.chunk_delay_seconds)
            yield data
            sent += 1

    async def _sleep(self, seconds: float) -> None:
        # In small steps, so a server that is stopping does not wait for it.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.closing:
            await asyncio.sleep(0.01)


class _CutStream(Response):
    """Sends the start of an answer, then returns without finishing it: uvicorn closes
    the connection (it logs "ASGI callable returned without completing response")."""

    def __init__(self, parts: list[bytes], *, length: int | None = None) -> None:
        super().__init__()
        self.parts = parts
        self.length = length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.length is None:
            headers = [(b"content-type", b"text/event-stream")]
        else:
            headers = [(b"content-type", b"application/json")]
            headers.append((b"content-length", str(self.length).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for part in self.parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})


def _error(
    status: int, code: str | None, message: str, headers: dict[str, str] | None = None
) -> Response:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


@contextmanager
def running_fake_openai() -> Iterator[FakeOpenAIServer]:
    """The fake served by uvicorn in a background thread, on a port bound here."""
    server = FakeOpenAIServer()
    routes = [Route("/v1/chat/completions", server.chat_completions, methods=["POST"])]
    app = Starlette(routes=routes)

    def stop() -> None:
        server.closing = True

    with serving(app, "fake OpenAI server", on_stop=stop) as origin:
        server.base_url = f"{origin}/v1"
        yield server


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI-compatible server for one test."""
    with running_fake_openai() as server:
        yield server

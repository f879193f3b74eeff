"""A zero-latency OpenAI-compatible model: the floor of a message's cost.

`POST /v1/chat/completions` answers at once with a fixed reply of `REPLY_TOKENS` words
and the usage (prompt tokens: the words of the messages sent); with `"stream": true` it
streams one chunk per word, then the usage chunk (`stream_options.include_usage`), then
`[DONE]`, as OpenAI does. `GET /health` answers 200 for the harness. The same process
serves both Portico (behind its OpenAI adapter) and the bench's direct calls, so the
difference between the two is what Portico adds to a message.

Run by the harness: `python -m bench.ceilings.model --port P --uvicorn-flags JSON`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bench.ceilings.serving import serve

REPLY_TOKENS = 16
REPLY_WORDS = tuple(f"word{i} " for i in range(REPLY_TOKENS))
JSON = "application/json"


def _prompt_tokens(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages", []))


def _usage(prompt: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": REPLY_TOKENS,
        "total_tokens": prompt + REPLY_TOKENS,
    }


def _chunk(model: str, created: int, delta: dict[str, str], finish: str | None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def _stream(model: str, prompt: int, with_usage: bool) -> AsyncIterator[bytes]:
    created = int(time.time())
    yield _chunk(model, created, {"role": "assistant", "content": ""}, None)
    for word in REPLY_WORDS:
        yield _chunk(model, created, {"content": word}, None)
    yield _chunk(model, created, {}, "stop")
    if with_usage:
        usage = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _usage(prompt),
        }
        yield b"data: " + orjson.dumps(usage) + b"\n\n"
    yield b"data: [DONE]\n\n"


async def completions(request: Request) -> Response:
    body = orjson.loads(await request.body())
    model = str(body.get("model", "bench"))
    prompt = _prompt_tokens(body)
    if body.get("stream"):
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_stream(model, prompt, with_usage), media_type="text/event-stream")
    answer = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(REPLY_WORDS)},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(prompt),
    }
    return Response(orjson.dumps(answer), media_type=JSON)


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type=JSON)


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/health", health),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvicorn-flags", required=True, help="JSON object of uvicorn flags")
    args = parser.parse_args()
    serve(create_app(), args.port, args.uvicorn_flags)


if __name__ == "__main__":
    main()

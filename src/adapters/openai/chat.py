"""`OpenAIChatModel`: the chat model port on any OpenAI-compatible server (OpenAI itself,
vLLM, llama.cpp, Ollama, a gateway), through the official SDK's `AsyncOpenAI`."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio

from adapters.openai.deadline import Deadline
from adapters.openai.errors import after_first_token, map_error, retry_after_seconds, retryable
from core.conversations.errors import ContentRefusedError, ModelUnavailableError
from core.conversations.model import ChatDelta, ChatMessage, ChatParams, ChatReply, ChatUsage
from core.conversations.ports import ChatModel

if TYPE_CHECKING:
    from openai.types import CompletionUsage

logger = logging.getLogger(__name__)

OPENAI_API = "https://api.openai.com/v1"
TokenLimitParameter = Literal["max_completion_tokens", "max_tokens"]
_MAX_BACKOFF = 8.0
_CLOSE_SECONDS = 2.0


class OpenAIChatModel(ChatModel):
    """A `ChatModel` on an OpenAI-compatible chat completions API.

    Guarantees:
    - Each call ends within `params.timeout_seconds`, from the request to the last item
      of a stream (the consumer's time between items counts), or raises
      `ModelTimeoutError`; each HTTP attempt also has `timeout_seconds` (connect, read,
      write). The SDK's own retries are off: this adapter retries, so it can keep to the
      deadline.
    - Retries (at most `max_retries`) happen only before the first token: on connection
      errors, timeouts of an attempt, 408/409/429/5xx answers, or a stream that breaks
      before its first delta. The wait is the server's `Retry-After` (`retry-after-ms`)
      when given, else `retry_backoff_seconds` doubling (at most 8 s) with jitter; a wait
      that would pass the deadline is not taken: the error is raised at once. After a
      delta was yielded nothing is retried: a broken stream raises
      `ModelUnavailableError` and what was yielded stands.
    - `stream` yields a `ChatDelta` per non-empty content delta, then exactly one
      `ChatUsage`, from the usage the server sends last (`stream_options.include_usage`).
      A server that reports no usage fails the call with `ModelUnavailableError`: usage
      is billed, and guessing it would bill wrongly. `ChatUsage.model` is the model asked
      for (the one Portico has a price for), not the snapshot name the server reports.
    - Errors: 429 `ModelRateLimitedError` (its `retry_after` from `Retry-After`); an
      exhausted account quota (429 `insufficient_quota`), 401 and 403
      `ModelUnavailableError`, logged as a misconfiguration; timeouts
      `ModelTimeoutError`; connection errors, 5xx, other statuses and malformed answers
      `ModelUnavailableError`; a content-policy refusal (400 with code `content_filter`
      or a message about the content policy, or `finish_reason == "content_filter"`)
      `ContentRefusedError`; other 400, 404, 413 and 422 `ModelBadRequestError`.
    - The reply is bounded by `params.max_output_tokens`, sent as `token_limit_parameter`:
      by default `max_completion_tokens` to OpenAI's API (its reasoning models refuse
      `max_tokens`) and `max_tokens` to any other `base_url` (what compatible servers
      read). `temperature` is sent when set.

    The SDK is imported when the model is built, not with this module. `close()` releases
    the HTTP connections.
    """

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str,
        timeout_seconds: float = 60.0,
        max_retries: int = 2,
        retry_backoff_seconds: float = 0.5,
        token_limit_parameter: TokenLimitParameter | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("an API key is required (any text for a server without keys)")
        if timeout_seconds <= 0 or max_retries < 0 or retry_backoff_seconds < 0:
            raise ValueError("the timeout is positive, the retries and backoff 0 or more")
        import openai

        self._openai = openai
        # The base URL is always passed: the SDK would otherwise read OPENAI_BASE_URL.
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or OPENAI_API,
            timeout=timeout_seconds,
            max_retries=0,
        )
        self.base_url = str(self._client.base_url)
        self.token_limit_parameter: TokenLimitParameter = token_limit_parameter or (
            "max_completion_tokens" if base_url is None else "max_tokens"
        )
        self._max_retries = max_retries
        self._backoff = retry_backoff_seconds

    async def close(self) -> None:
        """Closes the HTTP client's connections."""
        await self._client.close()

    # --- the port ------------------------------------------------------------------------

    async def complete(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> ChatReply:
        deadline = Deadline(params.timeout_seconds)
        body = self._body(messages, model, params)
        attempt = 0
        while True:
            try:
                async with deadline.bound():
                    answer = await self._client.chat.completions.create(**body)
                break
            except (self._openai.OpenAIError, json.JSONDecodeError) as exc:
                attempt = await self._before_retry(exc, attempt, deadline)
        if not answer.choices:
            raise ModelUnavailableError("The model answered without a reply.")
        choice = answer.choices[0]
        if choice.finish_reason == "content_filter":
            raise ContentRefusedError()
        usage = _usage(model, answer.usage)
        return ChatReply(choice.message.content or "", usage, choice.finish_reason)

    async def stream(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> AsyncIterator[ChatDelta | ChatUsage]:
        deadline = Deadline(params.timeout_seconds)
        body = self._body(messages, model, params)
        body.update(stream=True, stream_options={"include_usage": True})
        attempt = 0
        while True:
            chunks: Any = None
            yielded = False
            reported: CompletionUsage | None = None
            try:
                async with deadline.bound():
                    chunks = await self._client.chat.completions.create(**body)
                while True:
                    async with deadline.bound():
                        chunk = await anext(chunks, None)
                    if chunk is None:
                        break
                    reported = chunk.usage or reported
                    for choice in chunk.choices:  # none in the usage chunk
                        if choice.index != 0:
                            continue
                        if choice.delta is not None and choice.delta.content:
                            yielded = True
                            yield ChatDelta(choice.delta.content)
                        if choice.finish_reason == "content_filter":
                            raise ContentRefusedError()
            except (self._openai.OpenAIError, json.JSONDecodeError) as exc:
                if yielded:
                    raise after_first_token(map_error(exc)) from exc
                attempt = await self._before_retry(exc, attempt, deadline)
                continue
            finally:
                if chunks is not None:
                    await _close(chunks)
            yield _usage(model, reported)
            return

    # --- helpers -------------------------------------------------------------------------

    def _body(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            # The messages go in `extra_body`, which the SDK sends as given: its request
            # transform walks `messages` with typing introspection at every level, and on
            # a long history that walk cost more than the rest of a send together (a
            # known SDK issue, openai-python PR #3616). They are plain JSON already.
            "messages": [],
            "extra_body": {
                "messages": [{"role": m.role.value, "content": m.content} for m in messages]
            },
            self.token_limit_parameter: params.max_output_tokens,
        }
        if params.temperature is not None:
            body["temperature"] = params.temperature
        return body

    async def _before_retry(self, exc: Exception, attempt: int, deadline: Deadline) -> int:
        """Waits before the next attempt and returns its number, or raises `exc` mapped
        when there is none (not retryable, out of retries, or past the deadline)."""
        error = map_error(exc)
        if attempt >= self._max_retries or not retryable(exc, error):
            raise error from exc
        hinted = retry_after_seconds(exc)
        if hinted is not None and hinted >= 0:
            delay = hinted
        else:
            # Jitter spreads the retries of many callers hit by one outage.
            jitter = 1 - 0.25 * random.random()  # noqa: S311 - not a secret
            delay = min(self._backoff * 2**attempt, _MAX_BACKOFF) * jitter
        if delay >= deadline.remaining():
            raise error from exc
        logger.info("chat model: %s; retry %d in %.2f s", error.code, attempt + 1, delay)
        await asyncio.sleep(delay)
        return attempt + 1


def _usage(model: str, usage: CompletionUsage | None) -> ChatUsage:
    counts = (getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None))
    if not all(isinstance(n, int) and n >= 0 for n in counts):
        raise ModelUnavailableError("The provider reported no usage.")
    return ChatUsage(model, counts[0], counts[1])  # type: ignore[arg-type]


async def _close(chunks: Any) -> None:
    """Releases a stream's connection, even when the consumer was cancelled: under an
    anyio cancel scope (Starlette streaming) every await would be cancelled again."""
    with anyio.move_on_after(_CLOSE_SECONDS, shield=True):
        await chunks.close()

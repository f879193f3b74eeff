"""`ScriptedChatModel`: a `ChatModel` that answers from a script, with no network, for the
embedded profile and for tests. It does not import the OpenAI SDK.

Tokens, as it counts them (documented so tests and prices can rely on them):
- input: `ceil(len(content) / 4) + 4` per message (the content, plus the role and the
  separators a chat template adds), summed over the prompt;
- output: one token per delta it emits. A reply text is cut into deltas at word
  boundaries (each word with the whitespace after it; leading whitespace is a delta of
  its own), so the deltas joined give the text back exactly.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from adapters.openai.deadline import Deadline
from core.conversations.errors import ModelUnavailableError
from core.conversations.model import (
    ChatDelta,
    ChatMessage,
    ChatParams,
    ChatReply,
    ChatUsage,
    Role,
)
from core.conversations.ports import ChatModel
from core.shared.errors import DomainError

FAKE_MODEL = "portico-fake"
ECHO_PREFIX = "This is a scripted reply. You said: "
FILLER = ("lorem", "ipsum", "dolor", "sit", "amet")
_TOKEN = re.compile(r"\s+|\S+\s*")

Reply = str | Sequence[str]


def count_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """The fake's input token count of a prompt: `ceil(chars / 4) + 4` per message."""
    return sum(-(-len(message.content) // 4) + 4 for message in messages)


def split_tokens(text: str) -> list[str]:
    """`text` as the fake's deltas (one token each); `"".join(...)` gives `text` back."""
    return _TOKEN.findall(text)


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One call the fake received (for assertions)."""

    messages: tuple[ChatMessage, ...]
    model: str
    params: ChatParams
    streamed: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one call will do, fixed when the call starts."""

    tokens: list[str]
    finish_reason: str
    fail: DomainError | None = None
    cut: tuple[int, DomainError] | None = None


class ScriptedChatModel(ChatModel):
    """A deterministic `ChatModel`.

    Guarantees: the reply is the next scripted one (`queue`/`script`), else `reply` when
    given, else an echo of the last user message (`"This is a scripted reply. You said:
    ..."`); it has at most `params.max_output_tokens` tokens (exactly that many when
    `reply_at_max_output` is set, padded with lorem ipsum), `finish_reason` "length" when
    the limit cut it, else "stop". `stream` yields one `ChatDelta` per token, then exactly
    one `ChatUsage` (counted as the module says). Each delta waits
    `latency_per_token_seconds` first; the whole call ends within
    `params.timeout_seconds` (consumer time included) or raises `ModelTimeoutError`.

    Test knobs, each taken by the next call(s): `fail_next(error)` raises `error` before
    the first token; `cut_after(n, error)` breaks the stream after `n` deltas (default
    `ModelUnavailableError`; `complete` raises it). `calls` records every call. Safe for
    concurrent calls from tasks and threads: a call takes its script under a lock.
    """

    def __init__(
        self,
        *,
        reply: str | None = None,
        latency_per_token_seconds: float = 0.0,
        reply_at_max_output: bool = False,
    ) -> None:
        if latency_per_token_seconds < 0:
            raise ValueError("the latency is 0 or more")
        self.reply = reply
        self.latency_per_token_seconds = latency_per_token_seconds
        self.reply_at_max_output = reply_at_max_output
        self.calls: list[ChatCall] = []
        self._replies: deque[list[str]] = deque()
        self._failures: deque[DomainError] = deque()
        self._cuts: deque[tuple[int, DomainError]] = deque()
        self._lock = threading.Lock()

    # --- knobs ---------------------------------------------------------------------------

    def queue(self, *replies: Reply) -> None:
        """Adds replies for the next calls, in order: a text (cut into tokens), or a list
        of deltas (one token each, as given)."""
        tokens = [_tokens_of(reply) for reply in replies]
        with self._lock:
            self._replies.extend(tokens)

    def script(self, *replies: Reply) -> None:
        """Replaces the replies still queued with these."""
        tokens = [_tokens_of(reply) for reply in replies]
        with self._lock:
            self._replies.clear()
            self._replies.extend(tokens)

    def fail_next(self, error: DomainError, times: int = 1) -> None:
        """The next `times` calls raise `error` before their first token."""
        with self._lock:
            self._failures.extend([error] * times)

    def cut_after(self, deltas: int, error: DomainError | None = None) -> None:
        """The next call breaks after `deltas` deltas with `error` (default
        `ModelUnavailableError`); the deltas before it are delivered."""
        if deltas < 0:
            raise ValueError("the number of deltas is 0 or more")
        with self._lock:
            self._cuts.append((deltas, error or ModelUnavailableError("The stream broke.")))

    # --- the port ------------------------------------------------------------------------

    async def complete(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> ChatReply:
        deadline = Deadline(params.timeout_seconds)
        plan = self._start(messages, model, params, streamed=False)
        if plan.fail is not None:
            raise plan.fail
        tokens = plan.tokens if plan.cut is None else plan.tokens[: plan.cut[0]]
        async with deadline.bound():
            await asyncio.sleep(self.latency_per_token_seconds * len(tokens))
        if plan.cut is not None:
            raise plan.cut[1]
        usage = ChatUsage(model, count_prompt_tokens(messages), len(tokens))
        return ChatReply("".join(tokens), usage, plan.finish_reason)

    async def stream(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams
    ) -> AsyncIterator[ChatDelta | ChatUsage]:
        deadline = Deadline(params.timeout_seconds)
        plan = self._start(messages, model, params, streamed=True)
        if plan.fail is not None:
            raise plan.fail
        emitted = 0
        for token in plan.tokens:
            if plan.cut is not None and emitted == plan.cut[0]:
                raise plan.cut[1]
            async with deadline.bound():
                await asyncio.sleep(self.latency_per_token_seconds)
            emitted += 1
            yield ChatDelta(token)
        if plan.cut is not None:
            raise plan.cut[1]  # asked to break after as many deltas as the reply has
        async with deadline.bound():
            await asyncio.sleep(0)  # the consumer's time between deltas counts too
        yield ChatUsage(model, count_prompt_tokens(messages), emitted)

    # --- helpers -------------------------------------------------------------------------

    def _start(
        self, messages: Sequence[ChatMessage], model: str, params: ChatParams, *, streamed: bool
    ) -> _Plan:
        with self._lock:
            self.calls.append(ChatCall(tuple(messages), model, params, streamed))
            if self._failures:
                return _Plan([], "error", fail=self._failures.popleft())
            scripted = self._replies.popleft() if self._replies else None
            cut = self._cuts.popleft() if self._cuts else None
        if scripted is None:
            scripted = split_tokens(self.reply if self.reply is not None else _echo(messages))
        limit = max(params.max_output_tokens, 0)
        if self.reply_at_max_output:
            padding = (f" {FILLER[i % len(FILLER)]}" for i in range(limit))
            tokens = (scripted + list(padding))[:limit]
            return _Plan(tokens, "length", cut=cut)
        finish = "length" if len(scripted) > limit else "stop"
        return _Plan(scripted[:limit], finish, cut=cut)


def _tokens_of(reply: Reply) -> list[str]:
    if isinstance(reply, str):
        return split_tokens(reply)
    deltas = list(reply)
    if not all(isinstance(delta, str) and delta for delta in deltas):
        raise ValueError("scripted deltas are non-empty strings")
    return deltas


def _echo(messages: Sequence[ChatMessage]) -> str:
    said = next((m.content for m in reversed(messages) if m.role is Role.USER), "")
    return ECHO_PREFIX + (said or "(nothing)")

"""Estimating tokens without a tokenizer download, and the prompt: history trimmed to a
budget.

The estimate is deliberately high (a token per three characters, plus a few per
message for the chat format), since it sizes the credit reservation for the worst case:
an estimate too low would reserve less than the call may cost.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.conversations.model import ChatMessage, Role

CHARS_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_prompt(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(m.content) + TOKENS_PER_MESSAGE for m in messages)


def trim_history(
    system: ChatMessage | None, history: Sequence[ChatMessage], budget: int
) -> list[ChatMessage]:
    """The system prompt (always), then the newest messages of `history` that fit in
    `budget` estimated tokens, oldest first. The last message (the one being sent) is
    always kept, whatever its size."""
    kept: list[ChatMessage] = []
    used = estimate_prompt([system]) if system is not None else 0
    for position, message in enumerate(reversed(history)):
        cost = estimate_prompt([message])
        if position > 0 and used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    return [system, *kept] if system is not None else kept


def build_prompt(
    system_prompt: str | None, history: Sequence[ChatMessage], content: str, budget: int
) -> list[ChatMessage]:
    """What the model is sent: the system prompt, the history (its system messages left
    out: the conversation's own prompt stands for them) and the new message, trimmed to
    `budget` (`trim_history`)."""
    system = ChatMessage(Role.SYSTEM, system_prompt) if system_prompt else None
    past = [m for m in history if m.role is not Role.SYSTEM]
    return trim_history(system, [*past, ChatMessage(Role.USER, content)], budget)

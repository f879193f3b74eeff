"""The settings conversations run by, as a core value (built from the settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConversationPolicy:
    """- `default_model`: what a conversation created without a model uses.
    - `max_output_tokens`: every reply's bound, and what the worst case reserves for.
    - `history_token_budget`: the most (estimated) tokens of history sent with a message.
    - `timeout_seconds`: a model call's bound, stream included.
    - `micros_per_credit`: the charging rule: one credit per this many micro-units of
      cost, rounded up (1000: one credit per $0.001).
    - `reply_wait_seconds`: how long a repeated send waits for the first one's reply.
    """

    default_model: str
    max_output_tokens: int = 1024
    history_token_budget: int = 8000
    timeout_seconds: float = 60.0
    micros_per_credit: int = 1000
    reply_wait_seconds: float = 90.0

    def credits_for(self, cost: int) -> int:
        """Credits for a cost in micro-units: rounded up, so no call is free by rounding."""
        return -(-cost // self.micros_per_credit)

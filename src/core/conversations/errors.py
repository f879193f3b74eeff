"""Conversation and model errors, each a leaf of a shared category."""

from __future__ import annotations

from core.shared.errors import (
    ConflictError,
    NotFoundError,
    RateLimitedError,
    RuleViolationError,
    UnavailableError,
)


class ConversationNotFoundError(NotFoundError):
    code = "conversation_not_found"
    default_detail = "No such conversation."


class MessageExistsError(ConflictError):
    """The client message id is taken in this conversation (the first send wins)."""

    code = "message_exists"
    default_detail = "A message with this client_message_id exists."


class MessageNotFoundError(NotFoundError):
    code = "message_not_found"
    default_detail = "No such message."


class PriceNotFoundError(NotFoundError):
    code = "model_price_not_found"
    default_detail = "The model has no price: it cannot be used."


class ModelTimeoutError(UnavailableError):
    code = "model_timeout"
    default_detail = "The model did not answer in time."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, dependency="llm", retry_after=5)


class ModelUnavailableError(UnavailableError):
    code = "model_unavailable"
    default_detail = "The model is unavailable; try again shortly."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, dependency="llm", retry_after=retry_after)


class ModelRateLimitedError(RateLimitedError):
    """The provider refused for its own rate limits."""

    code = "model_rate_limited"
    default_detail = "The model provider is busy; try again shortly."


class ModelBadRequestError(RuleViolationError):
    """The provider refused the request as invalid (too long a prompt, an unknown
    model)."""

    code = "model_bad_request"
    default_detail = "The model refused the request."


class ContentRefusedError(RuleViolationError):
    """The provider's content policy refused the prompt or the reply."""

    code = "content_refused"
    default_detail = "The model refused this content."


class ReplyFailedError(ConflictError):
    """A repeated `client_message_id` whose first send failed: its result stands."""

    code = "reply_failed"
    default_detail = "The first send with this client_message_id failed."

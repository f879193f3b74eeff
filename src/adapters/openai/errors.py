"""The OpenAI SDK's errors as core errors, and which of them a retry may cure.

It imports the SDK only when it maps an error, which only a built `OpenAIChatModel`
(which imported it) does.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from core.conversations.errors import (
    ContentRefusedError,
    ModelBadRequestError,
    ModelRateLimitedError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from core.shared.errors import DomainError

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)

_CONTENT_CODES = frozenset({"content_filter", "content_policy_violation"})
_CONTENT_WORDS = ("content policy", "content management policy", "content filter")


def map_error(exc: Exception) -> DomainError:
    """The core error for an SDK error or a malformed answer (`json.JSONDecodeError`)."""
    import openai as sdk

    if isinstance(exc, sdk.APITimeoutError):
        return ModelTimeoutError("The model server did not answer in time.")
    if isinstance(exc, sdk.APIConnectionError):
        return ModelUnavailableError("The model server cannot be reached.")
    if not isinstance(exc, sdk.APIStatusError):
        # An error event inside a stream, a malformed answer, another SDK error.
        if isinstance(exc, sdk.APIError) and _content_refusal(exc):
            return ContentRefusedError()
        return ModelUnavailableError("The model server answered something unusable.")
    status = exc.status_code
    wait = retry_after_seconds(exc)
    if _account_refused(exc):
        logger.error(
            "chat model: the server refused our account (%s %s): check the API key, "
            "base URL and quota",
            status,
            exc.code,
        )
        return ModelUnavailableError()
    if status == 429:
        return ModelRateLimitedError(retry_after=_whole_seconds(wait, 1))
    if status >= 500 or status in (408, 409):
        return ModelUnavailableError(retry_after=_whole_seconds(wait, 5))
    if _content_refusal(exc):
        return ContentRefusedError()
    if status in (400, 404, 413, 422):
        return ModelBadRequestError(_message(exc) or None)
    return ModelUnavailableError(f"The model server answered {status}.")


def retryable(exc: Exception, error: DomainError) -> bool:
    """Whether another attempt may succeed (the server's `x-should-retry` decides when
    it says)."""
    header = _header(exc, "x-should-retry")
    if header in ("true", "false"):
        return header == "true"
    if isinstance(error, ModelRateLimitedError | ModelTimeoutError):
        return True
    # A refused account (logged) will not get better within one call.
    return isinstance(error, ModelUnavailableError) and not _account_refused(exc)


def after_first_token(error: DomainError) -> DomainError:
    """What a stream that already yielded raises for `error`."""
    if isinstance(error, ModelTimeoutError | ContentRefusedError):
        return error
    return ModelUnavailableError("The model's stream broke off.")


def retry_after_seconds(exc: Exception) -> float | None:
    """The server's Retry-After in seconds (`retry-after-ms` first), when numeric."""
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = _header(exc, name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds):
            return seconds
    return None


def _account_refused(exc: Exception) -> bool:
    """A bad key, a forbidden account or an exhausted quota: a misconfiguration."""
    status = getattr(exc, "status_code", None)
    code = getattr(exc, "code", None)
    return status in (401, 403) or (status == 429 and code == "insufficient_quota")


def _header(exc: Exception, name: str) -> str | None:
    response = getattr(exc, "response", None)
    value = response.headers.get(name) if response is not None else None
    return value if isinstance(value, str) else None


def _whole_seconds(seconds: float | None, default: int) -> int:
    if seconds is None or seconds <= 0:
        return default
    return max(1, math.ceil(seconds))


def _message(exc: openai.APIError) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else ""


def _content_refusal(exc: openai.APIError) -> bool:
    if exc.code in _CONTENT_CODES:
        return True
    text = f"{_message(exc)} {exc.message}".lower()
    return any(words in text for words in _CONTENT_WORDS)

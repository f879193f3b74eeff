"""Every error answer is an RFC 9457 problem (`application/problem+json`).

- Core errors: ONE handler keyed on `DomainError`; the category picks the status, the
  leaf's stable `code` goes into the body.
- HTTP-level problems (malformed JSON, wrong content type, request validation) are
  `HttpProblem`s raised by the request pipeline.
- Unknown routes and methods (Starlette's `HTTPException`) render as problems too.
- Anything else becomes a 500 problem without details (see `internal_error_response`);
  the exception is logged by type and place only, never with its message or a trace.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from core.shared.clock import Clock
from core.shared.errors import (
    AuthenticationError,
    ConflictError,
    DomainError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    RuleViolationError,
    UnavailableError,
)

log = structlog.get_logger("portico.http")

PROBLEM_MEDIA_TYPE = "application/problem+json"

_QUOTA_STATUS = {
    "insufficient_credits": 402,
    "payment_declined": 402,
    "feature_not_in_tier": 403,
    "limit_reached": 429,
}


# RFC 9110 names where Python 3.11's `HTTPStatus` still has the RFC 7231 ones.
_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def status_phrase(status: int) -> str:
    return _PHRASES.get(status) or HTTPStatus(status).phrase


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": status_phrase(status),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = [dict(e) for e in errors]
    if extra:
        body.update({k: v for k, v in extra.items() if v is not None})
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


def internal_error_response() -> Response:
    return problem_response(500, "internal_error", "An unexpected error occurred.")


# --- HTTP-level problems raised by the request pipeline ---------------------------------


class HttpProblem(Exception):
    status = 400
    code = "bad_request"
    detail = "The request is not valid."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail:
            self.detail = detail

    def response(self) -> Response:
        return problem_response(self.status, self.code, self.detail)


class MalformedJsonError(HttpProblem):
    status = 400
    code = "malformed_json"
    detail = "The request body is not valid JSON."


class UnsupportedMediaTypeError(HttpProblem):
    status = 415
    code = "unsupported_media_type"
    detail = "The request body must be application/json."


class RequestValidationFailed(HttpProblem):
    status = 422
    code = "validation_failed"
    detail = "The request is not valid."

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__()
        self.errors = errors

    def response(self) -> Response:
        return problem_response(self.status, self.code, self.detail, errors=self.errors)


class ResponseValidationFailed(HttpProblem):
    """Our own answer did not match its documented model: a bug, reported as a bare 500."""

    status = 500
    code = "internal_error"
    detail = "An unexpected error occurred."

    def response(self) -> Response:
        return internal_error_response()


def validation_errors(exc: Any, prefix: str) -> list[dict[str, Any]]:
    """pydantic errors as `{loc, msg, type}`; never the input (it may be a password)."""
    items = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        items.append(
            {"loc": [prefix, *error.get("loc", ())], "msg": error["msg"], "type": error["type"]}
        )
    return items


# --- core errors --------------------------------------------------------------------------


def domain_error_response(exc: DomainError, *, now: datetime | None = None) -> Response:
    """The single mapping from core error categories to HTTP answers."""
    if isinstance(exc, NotFoundError):
        return problem_response(404, exc.code, exc.detail)
    if isinstance(exc, ConflictError):
        return problem_response(409, exc.code, exc.detail)
    if isinstance(exc, PermissionDeniedError):
        return problem_response(403, exc.code, exc.detail)
    if isinstance(exc, AuthenticationError):
        return problem_response(401, exc.code, exc.detail)
    if isinstance(exc, RuleViolationError):
        errors = (
            [{"loc": ["body", exc.field], "msg": exc.detail, "type": exc.code}] if exc.field else []
        )
        return problem_response(422, exc.code, exc.detail, errors=errors)
    if isinstance(exc, QuotaExceededError):
        status = _QUOTA_STATUS.get(exc.reason, 403)
        headers = {}
        retry_after = _seconds_until(exc.resets_at, now)
        if status == 429 and retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return problem_response(
            status,
            exc.reason,
            exc.detail,
            headers=headers,
            extra={
                "limit": exc.limit,
                "remaining": exc.remaining,
                "resets_at": exc.resets_at,
                "upgrade_url": exc.upgrade_hint,
            },
        )
    if isinstance(exc, RateLimitedError):
        return problem_response(
            429, exc.code, exc.detail, headers={"Retry-After": str(max(1, exc.retry_after))}
        )
    if isinstance(exc, UnavailableError):
        # The adapter's detail may name hosts or drivers: log it, answer generically.
        log.warning("dependency_unavailable", dependency=exc.dependency)
        return problem_response(
            503,
            exc.code,
            UnavailableError.default_detail,
            headers={"Retry-After": str(max(1, exc.retry_after))},
        )
    return problem_response(400, exc.code, exc.detail)


def _seconds_until(moment: str | None, now: datetime | None) -> int | None:
    if not moment:
        return None
    try:
        when = datetime.fromisoformat(moment)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(1, int((when - now).total_seconds()))


# --- Starlette exception handlers --------------------------------------------------------


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    runtime = getattr(request.app.state, "runtime", None)
    now = runtime.get(Clock).now() if runtime is not None else None
    return domain_error_response(exc, now=now)


async def handle_http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpProblem)
    if isinstance(exc, ResponseValidationFailed):
        log.error("response_validation_failed", route=_route_path(request))
    return exc.response()


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 404:
        return problem_response(404, "not_found", "There is nothing at this address.")
    if status == 405:
        allow = ", ".join(sorted(_allowed_methods(request)))
        return problem_response(
            405,
            "method_not_allowed",
            "This method is not allowed here.",
            headers={"Allow": allow} if allow else None,
        )
    phrase = status_phrase(status)
    return problem_response(
        status, phrase.lower().replace(" ", "_").replace("-", "_"), phrase, headers=exc.headers
    )


def _allowed_methods(request: Request) -> set[str]:
    """Every method some route accepts for this path (one Route object per method)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return methods


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


EXCEPTION_HANDLERS = {
    DomainError: handle_domain_error,
    HttpProblem: handle_http_problem,
    HTTPException: handle_http_exception,
}


def domain_error_body(exc: DomainError) -> dict[str, Any]:
    """The problem a domain error answers, as a dict (an SSE stream's `error` event,
    sent after the response has started)."""
    body: dict[str, Any] = jsonlib.loads(domain_error_response(exc).body)
    return body

"""spectree glue: request validation in the problem shape, OpenAPI 3.1 (the docs page
is `docs.py`).

- Bodies: an empty body is `{}`; anything else must be `application/json` (415), parse
  (400, also for absurdly deep nesting) and validate against the handler's `json` model
  (422 with `errors`, never echoing the input). DELETE bodies are read too.
- Responses are built from their models (`ModelResponse`), which spectree recognises and
  does not re-validate; should a response ever fail validation it becomes a bare 500
  problem and a log line, never a pydantic error in the answer.
- The document lists every declared endpoint with every status the pipeline can answer;
  error answers are `application/problem+json`.
"""

from __future__ import annotations

import copy
import functools
import json as jsonlib
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from spectree import Response as SpecResponse
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import InType, SecureType
from spectree.plugins.base import Context
from spectree.plugins.starlette_plugin import StarlettePlugin
from spectree.utils import get_multidict_items_starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from entrypoints.bootstrap.settings import Settings
from entrypoints.http.context import require_principal
from entrypoints.http.cookies import CSRF_HEADER, pre_session_cookie_name
from entrypoints.http.endpoints import Access, Endpoint
from entrypoints.http.errors import (
    PROBLEM_MEDIA_TYPE,
    MalformedJsonError,
    RequestValidationFailed,
    ResponseValidationFailed,
    UnsupportedMediaTypeError,
    validation_errors,
)
from entrypoints.http.openapi_links import add_links
from entrypoints.http.schemas.problem import Problem
from entrypoints.http.schemas.users import NEW_PASSWORD_MARK

OPENAPI_PATH = "/openapi.json"

SESSION_SCHEME = "sessionCookie"
CSRF_SCHEME = "csrfToken"
PRE_SESSION_SCHEME = "preSessionCsrfCookie"
BEARER_SCHEME = "bearerToken"


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


async def read_json_body(request: Request) -> Any:
    body = await request.body()
    declared_json = _is_json(request.headers.get("content-type", ""))
    # No body means "no fields"; but a body declared as JSON must be JSON, and
    # whitespace alone is not.
    if not body or (not declared_json and not body.strip()):
        return {}
    if not declared_json:
        raise UnsupportedMediaTypeError()
    try:
        return jsonlib.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, huge ints, nesting
        raise MalformedJsonError() from None


class PorticoStarlettePlugin(StarlettePlugin):
    """spectree's Starlette plugin with our body rules and problem-shaped errors."""

    async def request_validation(
        self,
        request: Request,
        query: Any,
        json: Any,
        form: Any,
        headers: Any,
        cookies: Any,
    ) -> None:
        adapter = self.model_adapter
        parsed_query = parsed_body = None
        if query is not None:
            items = get_multidict_items_starlette(request.query_params, query)
            try:
                parsed_query = adapter.validate_obj(query, items)
            except adapter.validation_error as exc:
                raise RequestValidationFailed(validation_errors(exc, "query")) from None
        if json is not None:
            data = await read_json_body(request)
            try:
                parsed_body = adapter.validate_obj(json, data)
            except adapter.validation_error as exc:
                raise RequestValidationFailed(validation_errors(exc, "body")) from None
        request.context = Context(parsed_query, parsed_body, None, None, None)  # type: ignore[attr-defined]


def _before(req: Any, resp: Any, error: Any, instance: Any, adapter: Any) -> None:
    """Request errors are raised as problems before this runs; nothing to log here."""


def _after(req: Any, resp: Any, error: Any, instance: Any, adapter: Any) -> None:
    if error is not None:
        raise ResponseValidationFailed()


def _model_name(model: Any) -> str:
    return str(getattr(model, "__name__", model))


def new_spec(settings: Settings) -> SpecTree:
    return SpecTree(
        "starlette",
        backend=PorticoStarlettePlugin,
        mode="strict",
        title="Portico API",
        version="1",
        description="Accounts, sessions, plans, credits and AI conversations. "
        "Errors are RFC 9457 problem details with a stable `code`.",
        naming_strategy=_model_name,
        nested_naming_strategy=lambda _parent, child: child,
        validation_error_model=Problem,
        before=_before,
        after=_after,
        security_schemes=[
            SecurityScheme(
                name=SESSION_SCHEME,
                data=SecuritySchemeData(
                    type=SecureType.API_KEY,
                    name=settings.session_cookie_name,
                    field_in=InType.COOKIE,
                    description="The session cookie set by POST /api/v1/auth/login.",
                ),
            ),
            SecurityScheme(
                name=CSRF_SCHEME,
                data=SecuritySchemeData(
                    type=SecureType.API_KEY,
                    name=CSRF_HEADER,
                    field_in=InType.HEADER,
                    description="The session's `csrf_token` (from login) on unsafe methods; "
                    "for the signed-out form posts (login, registration, password reset, "
                    "email verification), the token from GET /api/v1/auth/csrf. Browsers "
                    "only: a request with no cookie, no Origin and no Sec-Fetch-Site needs "
                    "none.",
                ),
            ),
            SecurityScheme(
                name=BEARER_SCHEME,
                data=SecuritySchemeData(
                    type=SecureType.HTTP,
                    scheme="bearer",
                    bearer_format="JWT",
                    description="An access token from POST /api/v1/auth/token (or /refresh), "
                    "in `Authorization: Bearer <token>`. No CSRF token is needed with it.",
                ),
            ),
            SecurityScheme(
                name=PRE_SESSION_SCHEME,
                data=SecuritySchemeData(
                    type=SecureType.API_KEY,
                    name=pre_session_cookie_name(settings),
                    field_in=InType.COOKIE,
                    description="The pre-session CSRF cookie set by GET /api/v1/auth/csrf.",
                ),
            ),
        ],
    )


def documented_responses(endpoint: Endpoint) -> dict[int, type[BaseModel] | None]:
    """Declared answers plus every status the request pipeline can give this endpoint."""
    codes: dict[int, type[BaseModel] | None] = dict(endpoint.responses)
    if endpoint.body_model is not None:
        for code in (400, 413, 415, 422):
            codes.setdefault(code, Problem)
    if endpoint.access is Access.SESSION:
        codes.setdefault(401, Problem)
    if endpoint.unsafe:
        codes.setdefault(403, Problem)  # csrf_failed: a browser's cross-site or token-less post
    if endpoint.touches_runtime:
        codes.setdefault(503, Problem)
    if endpoint.rate_limited:
        codes.setdefault(429, Problem)
    return dict(sorted(codes.items()))


def _security(endpoint: Endpoint) -> list[dict[str, list[str]]] | dict[str, list[str]]:
    if endpoint.access is Access.SESSION:
        if endpoint.unsafe:
            return [{SESSION_SCHEME: [], CSRF_SCHEME: []}, {BEARER_SCHEME: []}]
        return [{SESSION_SCHEME: []}, {BEARER_SCHEME: []}]
    if endpoint.access is Access.PRE_SESSION:
        # Browsers need the pre-session token; clients that send no cookie and no browser
        # headers need nothing (the empty alternative).
        return [{PRE_SESSION_SCHEME: [], CSRF_SCHEME: []}, {}]
    return {}


def _require_session(func: Any) -> Any:
    @functools.wraps(func)
    async def guarded(request: Request) -> Response:
        require_principal(request)  # 401 before the body is even read
        return await func(request)  # type: ignore[no-any-return]

    return guarded


def _without_validation(handler: Any, validated: Any) -> Any:
    """`handler` as the route calls it when there is no input to validate, still found
    by the document through `__wrapped__` (spectree reads its metadata there).

    Responses are built from their models (`ModelResponse`), so spectree would have no
    work here but its own bookkeeping, which cost a bodiless route a tenth of its time.
    """

    @functools.wraps(handler)
    async def call(request: Request) -> Response:
        return await handler(request)  # type: ignore[no-any-return]

    call.__wrapped__ = validated  # type: ignore[attr-defined]
    return call


def _takes_input(endpoint: Endpoint) -> bool:
    parameters = typing.get_type_hints(endpoint.handler)
    return any(name not in ("request", "return") for name in parameters)


def build_routes(spec: SpecTree, endpoints: Iterable[Endpoint]) -> list[Route]:
    routes = []
    for endpoint in endpoints:
        responses = {
            f"HTTP_{code}": model for code, model in documented_responses(endpoint).items()
        }
        validated = spec.validate(
            resp=SpecResponse(**responses),
            tags=endpoint.tags,
            security=_security(endpoint),
            operation_id=endpoint.handler.__name__,
        )(endpoint.handler)
        if not _takes_input(endpoint):
            validated = _without_validation(endpoint.handler, validated)
        handler = _require_session(validated) if endpoint.access is Access.SESSION else validated
        routes.append(
            Route(endpoint.path, handler, methods=[endpoint.method], name=endpoint.handler.__name__)
        )
    return routes


EVENT_STREAM_ANSWER = {
    "description": "With `Accept: text/event-stream`: server-sent events.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


def openapi_document(
    spec: SpecTree,
    *,
    password_min_length: int | None = None,
    event_streams: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The generated document, tidied: problem media types, Retry-After headers, 422 only
    where there is input to validate, optional bodies marked optional, int64 ids; the
    password policy's minimum length on new passwords, when given; a 200
    `text/event-stream` answer on the `event_streams` operations (by operation id); and
    the links between operations (`openapi_links.py`)."""
    document: dict[str, Any] = copy.deepcopy(spec.spec)
    schemas = document.get("components", {}).get("schemas", {})
    for schema in schemas.values():
        _state_password_policy(schema, password_min_length)
    for operations in document["paths"].values():
        for operation in operations.values():
            _tidy_operation(operation, schemas)
            if operation.get("operationId") in event_streams:
                operation["responses"]["200"] = copy.deepcopy(EVENT_STREAM_ANSWER)
    add_links(document)
    return document


def _state_password_policy(schema: dict[str, Any], min_length: int | None) -> None:
    for field in schema.get("properties", {}).values():
        if field.pop(NEW_PASSWORD_MARK, False) and min_length is not None:
            field["minLength"] = max(field.get("minLength", 0), min_length)


def _tidy_operation(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    responses = operation.get("responses", {})
    body = operation.get("requestBody")
    has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    if body is None and not has_query:
        responses.pop("422", None)  # spectree adds it everywhere; nothing to validate here
    if body is not None:
        ref = body["content"]["application/json"]["schema"].get("$ref", "")
        model = schemas.get(ref.rsplit("/", 1)[-1], {})
        body["required"] = bool(model.get("required"))
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema") or {}
        if schema.get("type") == "integer":
            schema["format"] = "int64"
    for code, answer in responses.items():
        content = answer.get("content", {})
        json_body = content.get("application/json")
        if json_body and json_body.get("schema", {}).get("$ref", "").endswith("/Problem"):
            content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        if code in ("429", "503"):
            answer.setdefault("headers", {})["Retry-After"] = {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer"},
            }
    if operation.get("operationId") == "metrics":
        responses["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}

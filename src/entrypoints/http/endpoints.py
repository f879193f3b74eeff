"""How routes are declared: one decorator per endpoint, with its access rule and answers.

Route modules only *declare* endpoints (`EndpointGroup`); `app.py` turns them into
Starlette routes with a per-app SpecTree (validation + OpenAPI), so two apps in one
process never share state.

Access rules:
- `PUBLIC`: anyone, no CSRF token (system routes, the pre-session CSRF token, the bearer
  token endpoints); an Authorization header is not looked at.
- `PRE_SESSION`: anonymous form posts (login, registration, password reset, email
  verification): a browser's post needs the double-submit CSRF token; a client that
  sends no cookie and no browser header needs none.
- `SESSION`: a signed-in caller is required (401 otherwise, before the body is looked
  at): a live session, whose unsafe methods also need the session's CSRF token (403),
  or a bearer access token (no CSRF).

Whatever the rule, an unsafe request a browser sends from another origin is a 403
(`middleware/csrf.py`).
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

Handler = Callable[..., Awaitable[Response]]
ResponseModel = type[BaseModel] | None


class Access(Enum):
    PUBLIC = "public"
    PRE_SESSION = "pre_session"
    SESSION = "session"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    access: Access
    responses: Mapping[int, ResponseModel]
    tags: tuple[str, ...]
    # Statuses the pipeline can answer besides the declared ones are added in app.py.
    touches_runtime: bool = True
    description: str = ""
    # False for probes (health, readiness, metrics): never throttled.
    rate_limited: bool = True
    # Also answers 200 `text/event-stream` when asked (`Accept`), documented as such.
    event_stream: bool = False

    @property
    def body_model(self) -> type[BaseModel] | None:
        """The JSON body model: the handler's `json` parameter annotation (spectree style)."""
        hint = typing.get_type_hints(self.handler).get("json")
        return hint if isinstance(hint, type) and issubclass(hint, BaseModel) else None

    @property
    def unsafe(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")


@dataclass
class EndpointGroup:
    tags: tuple[str, ...]
    endpoints: list[Endpoint] = field(default_factory=list)
    rate_limited: bool = True

    def route(
        self,
        method: str,
        path: str,
        *,
        access: Access,
        responses: Mapping[int, ResponseModel],
        touches_runtime: bool = True,
        event_stream: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=path,
                    handler=handler,
                    access=access,
                    responses=dict(responses),
                    tags=self.tags,
                    touches_runtime=touches_runtime,
                    rate_limited=self.rate_limited,
                    event_stream=event_stream,
                )
            )
            return handler

        return register

    def get(self, path: str, **kwargs: typing.Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: typing.Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: typing.Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: typing.Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kwargs)


class ModelResponse(JSONResponse):
    """A JSON answer rendered from a pydantic model.

    The model was validated when it was built, and spectree recognises `_model_class`
    and skips re-validating it, so a response is never validated twice.
    """

    def __init__(
        self,
        model: BaseModel,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._model_class = type(model)
        super().__init__(model, status_code=status_code, headers=dict(headers or {}))

    def render(self, content: typing.Any) -> bytes:
        assert isinstance(content, BaseModel)
        return content.model_dump_json().encode("utf-8")


def no_content() -> Response:
    return Response(status_code=204)


__all__ = [
    "Access",
    "Endpoint",
    "EndpointGroup",
    "ModelResponse",
    "no_content",
]

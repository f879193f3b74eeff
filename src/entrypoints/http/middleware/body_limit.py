"""Request bodies larger than `settings.http.max_body_bytes` get a 413 problem.

A declared `Content-Length` over the limit is refused before any byte is read; streamed
(chunked) bodies are counted as they arrive and refused as soon as they pass the limit.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http.errors import problem_response


class _BodyTooLarge(Exception):
    """Raised from `receive` inside the app; caught here. Not a ValueError on purpose."""


def _too_large() -> Response:
    return problem_response(413, "body_too_large", "The request body is too large.")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared, chunked = _framing(scope)
        if declared == -1:
            await problem_response(400, "bad_request", "Content-Length is not valid.")(
                scope, receive, send
            )
            return
        if declared is not None and declared > self.max_body_bytes:
            await _too_large()(scope, receive, send)
            return
        if not chunked:
            # No body, or one the server delivers in exactly the declared length: within
            # the limit, so nothing to count (most requests: GETs, small JSON bodies).
            await self.app(scope, receive, send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await _too_large()(scope, receive, send)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared length (None when absent, -1 when malformed) and whether the body
    is sent in chunks (`Transfer-Encoding`), so its length is known only as it arrives."""
    declared: int | None = None
    chunked = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and declared is None:
            text = value.decode("latin-1").strip()
            declared = int(text) if text.isdigit() and len(text) <= 18 else -1
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked

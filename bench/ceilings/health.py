"""The bare ceiling of `/health` and of the anonymous `GET /api/v1/auth/csrf`.

A Starlette app with no middleware:
- `GET /health` answers the exact body and content type Portico's `/health` answered
  (the harness reads them from Portico and passes them in), so the two differ only in
  what the stack does around the route;
- `GET /health-with-headers` answers the same with the headers every Portico answer
  carries (its security headers and a fresh `X-Request-ID`): how much of the gap to
  the bare `/health` those mandatory headers alone cost (uvicorn checks every header);
- `GET /api/v1/auth/csrf` answers a JSON object of the same shape as Portico's, with a
  fresh random token of the same length and the same cookie set, but no signing and no
  rate limit: the least a route handing out such a token can do.

Run by the harness: `python -m bench.ceilings.health --port P --uvicorn-flags JSON ...`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.ceilings.serving import serve

CSRF_COOKIE_MAX_AGE_SECONDS = 2 * 60 * 60
HEADERS_PATH = "/health-with-headers"


def create_app(
    health_body: bytes,
    health_content_type: str,
    csrf_cookie: str,
    csrf_token_length: int,
    health_headers: dict[str, str] | None = None,
) -> Starlette:
    extra = dict(health_headers or {})

    async def health(request: Request) -> Response:
        return Response(health_body, media_type=health_content_type)

    async def health_with_headers(request: Request) -> Response:
        # What every Portico answer must carry (security headers, a fresh request id),
        # and nothing else: the floor of a stack that keeps them.
        headers = {**extra, "x-request-id": os.urandom(16).hex()}
        return Response(health_body, media_type=health_content_type, headers=headers)

    async def csrf(request: Request) -> Response:
        token = secrets.token_urlsafe(csrf_token_length)[:csrf_token_length]
        response = JSONResponse({"csrf_token": token})
        response.set_cookie(
            csrf_cookie,
            token,
            max_age=CSRF_COOKIE_MAX_AGE_SECONDS,
            path="/",
            httponly=True,
            samesite="lax",
        )
        return response

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route(HEADERS_PATH, health_with_headers, methods=["GET"]),
            Route("/api/v1/auth/csrf", csrf, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvicorn-flags", required=True, help="JSON object of uvicorn flags")
    parser.add_argument("--health-body-b64", required=True)
    parser.add_argument("--health-content-type", required=True)
    parser.add_argument("--csrf-cookie", required=True)
    parser.add_argument("--csrf-token-length", type=int, required=True)
    parser.add_argument("--health-headers-json", default="{}")
    args = parser.parse_args()
    app = create_app(
        base64.b64decode(args.health_body_b64),
        args.health_content_type,
        args.csrf_cookie,
        args.csrf_token_length,
        json.loads(args.health_headers_json),
    )
    serve(app, args.port, args.uvicorn_flags)


if __name__ == "__main__":
    main()

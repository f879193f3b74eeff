"""Liveness, readiness and metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse
from entrypoints.http.schemas.system import HealthRead, ReadinessRead

READY_RETRY_AFTER_SECONDS = 5
_MAX_REASON = 200

group = EndpointGroup(tags=("system",), rate_limited=False)
# Always the same answer: rendered once (probes call it often).
_HEALTHY = HealthRead().model_dump_json().encode("utf-8")


@group.get("/health", access=Access.PUBLIC, responses={200: HealthRead}, touches_runtime=False)
async def health(request: Request) -> Response:
    """Liveness: 200 while the process runs (no dependency is asked)."""
    return Response(_HEALTHY, media_type="application/json")


@group.get(
    "/ready",
    access=Access.PUBLIC,
    responses={200: ReadinessRead, 503: ReadinessRead},
    touches_runtime=False,
)
async def ready(request: Request) -> Response:
    """Readiness: every configured dependency is probed (with a timeout).

    200 when all answer; 503 with `Retry-After` and one entry per dependency otherwise.
    """
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        checks = {"runtime": "not started"}
    else:
        checks = {
            name: reason[:_MAX_REASON] for name, reason in (await runtime.readiness()).items()
        }
    if all(result == "ok" for result in checks.values()):
        return ModelResponse(ReadinessRead(status="ok", checks=checks))
    return ModelResponse(
        ReadinessRead(status="unavailable", checks=checks),
        status_code=503,
        headers={"Retry-After": str(READY_RETRY_AFTER_SECONDS)},
    )


@group.get("/metrics", access=Access.PUBLIC, responses={200: None}, touches_runtime=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format): HTTP requests and rate-limit
    refusals, then the core's telemetry (README "Metrics")."""
    metrics = request.app.state.metrics
    runtime = getattr(request.app.state, "runtime", None)
    more = () if runtime is None else (runtime.metrics_registry,)
    return Response(metrics.render(*more), media_type=metrics.content_type)

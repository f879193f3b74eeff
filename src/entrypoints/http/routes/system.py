"""Liveness, readiness and metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from entrypoints.http.endpoints import Access, EndpointGroup, ModelResponse
from entrypoints.http.schemas.problem import Problem
from entrypoints.http.schemas.system import DependencyRead, HealthRead, ReadinessRead

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
    """Readiness: every configured dependency (database, sessions, cache and rate-limit
    stores, the job broker) is probed at once, each with a timeout.

    200 when all answer; 503 with `Retry-After` when a required one does not (`checks`
    names it, `dependencies` adds each probe's latency). Dependencies listed in
    `PORTICO_HTTP__READINESS_OPTIONAL` are reported without failing readiness
    (`degraded`).
    """
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return ModelResponse(
            ReadinessRead(status="unavailable", checks={"runtime": "not started"}),
            status_code=503,
            headers={"Retry-After": str(READY_RETRY_AFTER_SECONDS)},
        )
    report = await runtime.dependencies()
    checks = {name: result.status[:_MAX_REASON] for name, result in report.items()}
    dependencies = {
        name: DependencyRead(
            status="ok" if result.ok else "down",
            latency_ms=result.latency_ms,
            backend=result.backend,
            required=result.required,
        )
        for name, result in report.items()
    }
    if all(result.ok for result in report.values()):
        return ModelResponse(ReadinessRead(status="ok", checks=checks, dependencies=dependencies))
    if all(result.ok or not result.required for result in report.values()):
        return ModelResponse(
            ReadinessRead(status="degraded", checks=checks, dependencies=dependencies)
        )
    return ModelResponse(
        ReadinessRead(status="unavailable", checks=checks, dependencies=dependencies),
        status_code=503,
        headers={"Retry-After": str(READY_RETRY_AFTER_SECONDS)},
    )


@group.get(
    "/metrics",
    access=Access.PUBLIC,
    responses={200: None, 401: Problem, 403: Problem},
    touches_runtime=False,
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format): HTTP requests and rate-limit
    refusals, then the core's telemetry (README "Metrics").

    Protected by `PORTICO_METRICS__TOKEN` (401 `metrics_unauthorized` without the right
    bearer token) and/or `PORTICO_METRICS__ALLOWED_NETWORKS` (403 `metrics_forbidden`
    from other addresses when no token is configured); open when neither is set.
    """
    refusal = request.app.state.metrics_access.refusal(request)
    if refusal is not None:
        return refusal
    metrics = request.app.state.metrics
    runtime = getattr(request.app.state, "runtime", None)
    more = () if runtime is None else (runtime.metrics_registry,)
    return Response(metrics.render(*more), media_type=metrics.content_type)

"""Liveness and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthRead(BaseModel):
    status: Literal["ok"] = "ok"


class DependencyRead(BaseModel):
    status: Literal["ok", "down"]
    latency_ms: float = Field(description="How long the probe took, in milliseconds.")
    backend: str = Field(
        description="What serves it: `postgresql`, `sqlite`, `redis`, `memcached`, `amqp`, "
        "`memory`."
    )
    required: bool = Field(
        description="Readiness fails while it is down (all but those listed in "
        "`PORTICO_HTTP__READINESS_OPTIONAL`)."
    )


class ReadinessRead(BaseModel):
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="`unavailable` (503) when a required dependency is down; `degraded` "
        "(200) when only optional ones are."
    )
    checks: dict[str, str] = Field(
        description="One entry per configured dependency: `ok` or a short reason."
    )
    dependencies: dict[str, DependencyRead] = Field(
        default_factory=dict,
        description="The same dependencies with their probe's latency, backend and "
        "whether readiness depends on them.",
    )

"""Settings of OpenTelemetry tracing (`PORTICO_TRACING__*`, a section of `Settings`).

Off by default: with tracing off no OpenTelemetry module is ever imported.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class TracingSettings(BaseModel):
    enabled: bool = False
    # `otlp`: batched to an OTLP collector over HTTP (protobuf); `console`: printed to
    # stdout (development); `none`: spans are made (trace ids reach the logs) but never
    # exported (tests, or trace ids in logs only).
    exporter: Literal["otlp", "console", "none"] = "otlp"
    # The collector's traces URL, e.g. `http://collector:4318/v1/traces`; unset: the
    # standard `OTEL_EXPORTER_OTLP_*` variables, else `http://localhost:4318/v1/traces`.
    otlp_endpoint: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    service_name: str = Field("portico", min_length=1, max_length=200)
    # Share of new traces kept; a request that arrives with a `traceparent` follows its
    # caller's decision (parent-based).
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0)

    @field_validator("otlp_endpoint", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty variable (`PORTICO_TRACING__OTLP_ENDPOINT=`) means unset.
        return None if isinstance(value, str) and not value.strip() else value

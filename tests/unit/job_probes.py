"""Probe job handlers for the runtime tests, registered with
`PORTICO_JOBS__EXTRA_HANDLERS=tests.unit.job_probes:handlers` (the extension point)."""

from __future__ import annotations

import asyncio

from core.platform.jobs import Job, JobHandler, Outbox
from core.shared.clock import Clock
from entrypoints.bootstrap.services import Services
from entrypoints.bootstrap.settings import Settings

SPEC = "tests.unit.job_probes:handlers"


class Probe:
    """What the probe handlers did; reset by each test."""

    def __init__(self) -> None:
        self.seen: list[Job] = []
        self.ran = asyncio.Event()

    def reset(self) -> None:
        self.seen.clear()
        self.ran = asyncio.Event()


PROBE = Probe()


def handlers(services: Services, settings: Settings) -> dict[str, JobHandler]:
    async def record(job: Job) -> None:
        PROBE.seen.append(job)
        PROBE.ran.set()

    async def chain(job: Job) -> None:
        # Enqueues its successor, as a handler calling a service that enqueues would.
        PROBE.seen.append(job)
        left = int(job.payload["left"])
        if left > 0:
            await services.get(Outbox).add(
                "probe.chain",
                {"left": left - 1},
                idempotency_key=f"chain-{left - 1}",
                now=services.get(Clock).now(),
            )

    async def fail(job: Job) -> None:
        PROBE.seen.append(job)
        raise RuntimeError("probe failure")

    return {"probe.record": record, "probe.chain": chain, "probe.fail": fail}

"""The summary `make bench` prints: Markdown tables ready for `bench/README.md`.

Figures are medians over the rounds. Ratios are Portico's figure over its ceiling's,
taken per round (the two runs were next to each other in time) and then the median, with
the range over rounds in parentheses: req/s ratio (higher is better, 1.0 is the ceiling)
and p99 ratio (lower is better, 1.0 is the ceiling).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.measure import Measurements, Run
from bench.processes import Memory
from bench.scenarios import PORTICO


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ratio(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    text = f"{_median(values):.2f}"
    if len(values) > 1:
        text += f" ({min(values):.2f}-{max(values):.2f})"
    return text


def _ms(value: float) -> str:
    return f"{value:.1f}"


def scenario_table(measurements: Measurements) -> str:
    lines = [
        "| scenario | ceiling | ceiling req/s | ceiling p50 / p99 ms | Portico req/s "
        "| Portico p50 / p99 ms | req/s ratio | p99 ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    titles = list(dict.fromkeys(run.scenario for run in measurements.runs))
    for title in titles:
        runs = [run for run in measurements.runs if run.scenario == title]
        portico = [run for run in runs if run.target == PORTICO]
        ceiling = [run for run in runs if run.target != PORTICO]
        rps_ratios, p99_ratios = _per_round_ratios(portico, ceiling)
        lines.append(
            f"| {title} | {ceiling[0].target} | {_median([r.result.rps for r in ceiling]):.0f} "
            f"| {_ms(_median([r.result.p50_ms for r in ceiling]))} / "
            f"{_ms(_median([r.result.p99_ms for r in ceiling]))} "
            f"| {_median([r.result.rps for r in portico]):.0f} "
            f"| {_ms(_median([r.result.p50_ms for r in portico]))} / "
            f"{_ms(_median([r.result.p99_ms for r in portico]))} "
            f"| {_ratio(rps_ratios)} | {_ratio(p99_ratios)} |"
        )
    return "\n".join(lines)


def _per_round_ratios(portico: list[Run], ceiling: list[Run]) -> tuple[list[float], list[float]]:
    by_round = {run.round: run.result for run in ceiling}
    rps, p99 = [], []
    for run in portico:
        bare = by_round.get(run.round)
        if bare is None:
            continue
        if bare.rps > 0:
            rps.append(run.result.rps / bare.rps)
        if bare.p99_ms > 0:
            p99.append(run.result.p99_ms / bare.p99_ms)
    return rps, p99


def login_table(measurements: Measurements) -> str:
    streams = measurements.login_streams
    idle = [s.idle_reads for s in streams]
    busy = [s.reads for s in streams]
    logins = [s.logins for s in streams]
    ratios = [b.p99_ms / i.p99_ms for b, i in zip(busy, idle, strict=True) if i.p99_ms > 0]
    return "\n".join(
        [
            "| cookie /users/me on Portico | idle p99 ms | p99 during logins ms | p99 ratio "
            "| req/s idle / during | logins/s (p50 / p99 ms) |",
            "|---|---|---|---|---|---|",
            f"| reads during a login stream | {_ms(_median([r.p99_ms for r in idle]))} "
            f"| {_ms(_median([r.p99_ms for r in busy]))} | {_ratio(ratios)} "
            f"| {_median([r.rps for r in idle]):.0f} / {_median([r.rps for r in busy]):.0f} "
            f"| {_median([r.rps for r in logins]):.1f} "
            f"({_ms(_median([r.p50_ms for r in logins]))} / "
            f"{_ms(_median([r.p99_ms for r in logins]))}) |",
        ]
    )


def memory_lines(
    after_start: Memory | None, after_load: Memory, ceilings: dict[str, Memory]
) -> str:
    lines = [
        f"Portico after the whole load (and 2 s for requests in flight): {after_load.describe()}"
    ]
    if after_start is not None:
        lines.append(f"Portico once ready, before any load: {after_start.rss_kib / 1024:.1f} MiB")
    for name, memory in ceilings.items():
        lines.append(f"{name} after the load: {memory.describe()}")
    return "\n".join(lines)

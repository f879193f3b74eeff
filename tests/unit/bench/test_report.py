"""The summary tables: medians over rounds, ratios paired within a round."""

from __future__ import annotations

from bench.measure import LoginStream, Measurements, Run
from bench.report import login_table, scenario_table
from bench.wrk import WrkResult


def result(rps: float, p99_ms: float, failures: dict[str, int] | None = None) -> WrkResult:
    return WrkResult(
        requests=int(rps * 10),
        seconds=10.0,
        p50_ms=p99_ms / 2,
        p90_ms=p99_ms / 1.5,
        p99_ms=p99_ms,
        max_ms=p99_ms * 2,
        failures=failures or {},
    )


def _row(table: str, title: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {title} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_ratios_pair_portico_with_the_ceiling_run_of_the_same_round() -> None:
    m = Measurements(
        runs=[
            Run(1, "/health", "health ceiling", result(1000, 10)),
            Run(1, "/health", "portico", result(500, 40)),
            # Round 2 ran on a slower machine: each pair still compares like with like.
            Run(2, "/health", "portico", result(100, 100)),
            Run(2, "/health", "health ceiling", result(400, 20)),
        ]
    )
    row = _row(scenario_table(m), "/health")
    assert row[1] == "health ceiling"
    assert row[2] == "700"  # median of 1000 and 400
    assert row[4] == "300"  # median of 500 and 100
    # Per round: 0.50 and 0.25 (req/s), 4.0 and 5.0 (p99); a ratio of medians would say 0.43.
    assert row[6] == "0.38 (0.25-0.50)"
    assert row[7] == "4.50 (4.00-5.00)"


def test_the_login_stream_compares_reads_with_their_idle_p99() -> None:
    m = Measurements(
        login_streams=[
            LoginStream(
                1, idle_reads=result(800, 50), reads=result(600, 150), logins=result(4, 900)
            ),
        ]
    )
    row = _row(login_table(m), "reads during a login stream")
    assert row[1:4] == ["50.0", "150.0", "3.00"]
    assert row[4] == "800 / 600"
    assert row[5].startswith("4.0 ")


def test_failed_requests_are_listed_and_clean_runs_are_not() -> None:
    m = Measurements(
        runs=[
            Run(1, "anonymous /auth/csrf", "portico", result(100, 10, {"status": 12})),
            Run(1, "anonymous /auth/csrf", "health ceiling", result(100, 10)),
        ],
        login_streams=[
            LoginStream(1, result(1, 1), result(1, 1), result(1, 1, {"timeout": 2})),
        ],
    )
    assert m.failures() == [
        "round 1 anonymous /auth/csrf on portico: {'status': 12}",
        "round 1 login stream logins: {'timeout': 2}",
    ]

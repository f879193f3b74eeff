"""Reading wrk's report line (printed by bench/wrk_report.lua's done())."""

from __future__ import annotations

import re

import pytest

from bench import wrk as wrk_module
from bench.wrk import LUA_SCRIPT, WrkMissingError, find_wrk, parse_report

LINE = (
    'BENCH_WRK_JSON {"requests":20000,"duration_us":10000000,"bytes":123,'
    '"p50_us":1500,"p90_us":2500,"p99_us":4250,"max_us":9000,"mean_us":1600.5,'
    '"connect_errors":0,"read_errors":0,"write_errors":0,"timeouts":0,"non_2xx_3xx":%d}'
)


def test_a_clean_run_gives_rate_and_latencies_in_milliseconds() -> None:
    result = parse_report("Running 10s test\n" + LINE % 0 + "\n")
    assert result.rps == pytest.approx(2000.0)
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (1.5, 4.25, 9.0)
    assert result.failed == 0 and result.failures == {}


def test_refused_requests_are_counted_as_failures() -> None:
    result = parse_report(LINE % 7)
    assert result.failures == {"status": 7}
    assert result.failed == 7


def test_output_without_the_report_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="no report"):
        parse_report("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_the_lua_script_prints_every_field_the_parser_reads() -> None:
    script = LUA_SCRIPT.read_text()
    printed = set(re.findall(r'"(\w+)":%', script))
    read = set(re.findall(r'"(\w+)":', LINE % 0))
    assert printed == read


def test_a_missing_wrk_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wrk_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(wrk_module.os, "geteuid", lambda: 1000)
    with pytest.raises(WrkMissingError, match=r"apt-get install -y wrk"):
        find_wrk()
    # Positive control: an installed wrk is found without installing anything.
    monkeypatch.setattr(wrk_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert find_wrk() == "/usr/bin/wrk"

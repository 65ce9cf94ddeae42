"""The latency curve: wrk's `done()` hook reports it, the report draws and links it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from bench import load, report, wrk
from bench.baseline import BaselineServer
from bench.model import Comparison, Result
from bench.report import Outcome

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(ms: float, percentile_ms: list[float]) -> load.LoadRun:
    curve = tuple(zip(wrk.PERCENTILES, percentile_ms, strict=False))
    result = wrk.WrkResult("http://127.0.0.1:1/", 16, 1.0, 100, 100.0, ms, ms, ms,
                           percentiles=curve)  # fmt: skip
    return load.LoadRun(result, server_cpu_s=0.05)


def _report(results: list[Result]) -> dict:
    comparison = Comparison("demo", "Demo comparison", lambda ctx: results)
    return report.build(
        [Outcome(comparison, results)],
        quick=True,
        params={},
        started=dt.datetime.now(dt.UTC),
        machine_info=report.machine(),
        profiles={},
    )


def test_wrk_reports_a_rising_latency_curve_from_a_real_server(tmp_path: Path) -> None:
    server = BaselineServer(tmp_path).start()
    try:
        result = wrk.run(server.echo_url, body=b'{"a": 1}', connections=4, duration_s=1)
    finally:
        server.stop()
    assert [p for p, _ in result.percentiles] == list(wrk.PERCENTILES)
    latencies = [ms for _, ms in result.percentiles]
    assert all(ms > 0 for ms in latencies)
    assert latencies == sorted(latencies)
    median = dict(result.percentiles)[50]
    assert median == pytest.approx(result.p50_ms, rel=0.05, abs=0.05)


def test_whole_seconds_only() -> None:
    with pytest.raises(wrk.WrkError, match="whole number"):
        wrk.run("http://127.0.0.1:1/", body=b"{}", duration_s=0.5)


def test_report_draws_and_links_the_curves(tmp_path: Path) -> None:
    rising = [0.5 + i * 0.1 for i in range(len(wrk.PERCENTILES))]
    pair = load.Pair(
        key="demo-16c",
        title="Demo, 16 connections",
        connections=16,
        a_label="Nimbus demo",
        a=[_run(2.0, [x * 2 for x in rising])],
        b_label="bare echo",
        b=[_run(1.0, rising)],
        panel="16 connections",
    )
    rows = pair.rows()
    cpu = pair.cpu_row("demo-cpu", "Demo: server CPU per call")
    assert cpu is not None and cpu.a.median == pytest.approx(0.5)  # 50 ms over 100 calls
    data = _report([*rows, cpu])

    json_path, md_path = report.write(data, tmp_path)

    png = tmp_path / "latency.png"
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 10_000
    assert json.loads(json_path.read_text())["plots"] == {"latency": "latency.png"}
    assert "![latency percentiles](latency.png)" in md_path.read_text()
    curves = rows[0].details["latency_curves"]
    assert curves["reference"] == "bare echo"
    assert set(curves["curves"]) == {"Nimbus demo", "bare echo"}


def test_no_curves_no_plot_and_no_stale_one(tmp_path: Path) -> None:
    (tmp_path / "latency.png").write_bytes(PNG_MAGIC + b"an older run's plot")
    _, md_path = report.write(_report([]), tmp_path)
    assert not (tmp_path / "latency.png").exists()
    assert "latency.png" not in md_path.read_text()


def test_a_bracketed_reference_is_the_mean_of_the_runs_around_the_repetition() -> None:
    before, after = _run(1.0, [1.0, 2.0]), _run(3.0, [3.0, 6.0])
    after = load.LoadRun(dataclasses.replace(after.wrk, requests_per_s=300.0), 0.15)
    (merged,) = load.bracketed([before], [after])
    assert merged.wrk.requests_per_s == 200.0 and merged.wrk.requests == 200
    assert merged.wrk.p50_ms == 2.0
    assert merged.wrk.percentiles == ((1, 2.0), (10, 4.0))
    assert merged.cpu_ms_per_call == pytest.approx(1.0)  # 0.2 s over 200 calls

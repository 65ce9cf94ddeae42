"""Windowed stats through a real 2-worker server: exact counts per version, p99 within a bucket."""

from __future__ import annotations

import math
import time

from gateway.telemetry.histogram import GROWTH
from tests.e2e import wasm as w
from tests.e2e.test_observability import cold_count, deploy, metric, once, poll


def client_p99(durations: list[float]) -> float:
    ranked = sorted(durations)
    return ranked[math.ceil(0.99 * len(ranked)) - 1]


def test_windowed_stats_agree_with_the_calls_made(server, name):
    deploy(server, name, w.ECHO_WAT)
    calls = [once(server, "POST", f"/api/v1/functions/{name}/invoke", json={"i": i})
             for i in range(120)]  # fmt: skip
    assert {c.status_code for c in calls} == {200} and cold_count(calls) == 2  # both workers
    update = once(server, "PUT", f"/api/v1/functions/{name}?wait=true",
                  json={"artifact_base64": w.b64(w.wat(w.FAIL_WAT))})  # fmt: skip
    assert update.status_code == 200 and update.json()["active_version"] == 2
    time.sleep(1.1)  # every worker's record cache is at most 1 s old
    failures = [once(server, "POST", f"/api/v1/functions/{name}/invoke") for _ in range(40)]
    assert {c.status_code for c in failures} == {500}

    def stats():
        view = once(server, "GET", f"/api/v1/functions/{name}/stats", params={"since": "5m"})
        assert view.status_code == 200, view.text
        body = view.json()
        return body if body["totals"]["invocations"] == 160 else None

    # exact once every worker has flushed (≤ one flush interval, 0.5 s)
    body = poll(stats, timeout=5)
    assert body, "windowed stats never counted all 160 calls"
    assert body["staleness_sec"] == 0.5 and body["function"]["name"] == name
    one, two = body["by_version"]["1"], body["by_version"]["2"]
    assert (one["invocations"], one["succeeded"], one["errors"]) == (120, 120, 0)
    assert (two["invocations"], two["failed"], two["error_rate"]) == (40, 40, 1.0)
    assert two["error_codes"] == {"function_error": 40}
    assert body["totals"]["cold_starts"] >= 3  # each worker, and again for version 2
    assert sum(p["invocations"] for p in body["series"]) == 160
    assert sum(p["by_version"].get("2", {}).get("invocations", 0) for p in body["series"]) == 40
    # p99 of the server's merged histogram vs the exact p99 of what each call reported
    exact = client_p99([float(c.headers["X-Nimbus-Duration-Ms"]) for c in calls])
    p99 = one["duration_ms"]["p99"]
    assert exact / GROWTH - 0.001 <= p99 <= exact * GROWTH + 0.001, (p99, exact)

    only_one = once(server, "GET", f"/api/v1/functions/{name}/stats",
                    params={"since": "5m", "step": "10s", "version": 1}).json()  # fmt: skip
    assert only_one["totals"]["invocations"] == 120 and set(only_one["by_version"]) == {"1"}
    assert only_one["step_sec"] == 10 and only_one["resolution_sec"] == 10

    text = once(server, "GET", "/metrics").text
    assert metric(text, "nimbus_version_invocations_total", function=name, version="1",
                  status="succeeded") == 120  # fmt: skip
    assert metric(text, "nimbus_version_invocations_total", function=name, version="2",
                  status="failed") == 40  # fmt: skip

    platform = once(server, "GET", "/api/v1/stats", params={"since": "5m", "step": "1m"}).json()
    assert platform["by_function"][name]["invocations"] == 160
    assert platform["function"] is None and platform["step_sec"] == 60
    assert "total_invocations" in once(server, "GET", "/api/v1/stats").json()  # cumulative


def test_bad_stats_queries_are_422_naming_the_field(server, name):
    deploy(server, name, w.ECHO_WAT)
    path = f"/api/v1/functions/{name}/stats"
    for params, field in (
        ({"step": "15"}, "step"),
        ({"step": "soon"}, "step"),
        ({"since": "yesterday"}, "since"),
        ({"since": "1m", "until": "2m"}, "since"),
        ({"since": "30d", "step": "10s"}, "step"),
    ):
        resp = once(server, "GET", path, params=params)
        assert resp.status_code == 422, (params, resp.text)
        assert resp.json()["error"]["details"][0]["field"] == field
    resp = once(server, "GET", path, params={"version": "x"})  # as every other bad parameter
    assert resp.status_code == 422 and resp.json()["error"]["details"][0]["field"] == "version"
    assert once(server, "GET", "/api/v1/functions/fn-missing-xyz/stats").status_code == 404

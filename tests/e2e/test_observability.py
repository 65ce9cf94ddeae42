"""Logs, metrics, stats and quota through a real 2-worker `nimbus serve`.

Calls that must reach both workers go over fresh connections (a kept-alive
connection stays with one worker); a cold start per worker shows that both
served. Counts come from fresh servers so they start at zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from store import Store, open_store
from tests.e2e import wasm as w
from tests.e2e.server import NimbusProcess

FAST_UPKEEP = {"UPKEEP_INTERVAL_SEC": "0.3", "STATS_FOLD_AFTER_SEC": "2"}


def once(server: NimbusProcess, method: str, path: str, **kw) -> httpx.Response:
    """One request on a new connection, so either worker may answer it."""
    headers = {"Authorization": f"Bearer {server.api_key}", **kw.pop("headers", {})}
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kw)


def deploy(server: NimbusProcess, name: str, source: str, **extra) -> dict:
    body = {"name": name, "runtime": "wasm", "artifact_base64": w.b64(w.wat(source)), **extra}
    resp = once(server, "POST", "/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201 and resp.json()["status"] == "active", resp.text
    return resp.json()


def invoke_on_both_workers(server: NimbusProcess, name: str, at_least: int) -> list[httpx.Response]:
    """Invoke at least `at_least` times, and until both workers have served one (cold twice)."""
    out: list[httpx.Response] = []
    while len(out) < at_least or cold_count(out) < 2:
        out.append(once(server, "POST", f"/api/v1/functions/{name}/invoke", json={"n": len(out)}))
        assert len(out) < 300, "the calls never reached the second worker"
    return out


def cold_count(responses: list[httpx.Response]) -> int:
    return sum(r.headers["X-Nimbus-Cold-Start"] == "true" for r in responses)


def poll(check: Callable[[], object], timeout: float = 10.0, every: float = 0.1):
    """Call `check` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def logs(server: NimbusProcess, ref: str, **params) -> httpx.Response:
    return once(server, "GET", f"/api/v1/functions/{ref}/logs", params=params)


def store_keys(server: NimbusProcess, prefix: str, monkeypatch) -> list[str]:
    """What the server's store holds under `prefix`, read directly (either backend)."""
    env = server.env
    if "NIMBUS_STORE" not in env:
        store: Store = open_store(str(server.data_dir))
    else:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):
            monkeypatch.setenv(name, env[name])
        store = open_store(
            env["NIMBUS_STORE"], endpoint_url=env["S3_ENDPOINT_URL"], region=env["AWS_REGION"]
        )
    try:
        return list(store.list(prefix))
    finally:
        store.close()


def metric(text: str, sample: str, **labels) -> float:
    """A sample's value summed over the series that carry `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


# -- logs ------------------------------------------------------------------------


def test_logs_of_each_invocation_are_readable_from_any_worker(server, name):
    deploy(server, name, w.FAIL_WAT)
    calls = invoke_on_both_workers(server, name, at_least=6)
    assert {r.status_code for r in calls} == {500}
    for call in calls:
        inv = call.headers["X-Nimbus-Invocation-Id"]
        # Every read is a fresh connection: about half land on the worker that did not run it.
        for _ in range(2):
            found = poll(lambda inv=inv: logs(server, name, invocation_id=inv).json()["entries"])
            assert [(e["stream"], e["invocation_id"]) for e in found] == [
                ("platform", inv),
                ("stderr", inv),
                ("stderr", inv),
            ]
            # what it wrote, then its error as the platform saw it (as Lambda logs it)
            assert found[2]["line"] == "something broke"
            assert found[1]["line"] == "[ERROR] ExitError: function exited with status 3"
            end = found[0]["line"]
            assert end.startswith("END duration=") and "ms status=failed" in end
            assert "error=function_error type=ExitError version=1 trigger=api" in end
            assert found[0]["ts"] >= found[1]["ts"]


def test_logs_limit_since_and_bad_queries(server, name):
    deploy(server, name, w.ECHO_AND_LOG_WAT)
    with server.client() as api:
        ids = []
        for i in range(5):
            resp = api.post(f"/api/v1/functions/{name}/invoke", json={"call": i})
            ids.append(resp.headers["X-Nimbus-Invocation-Id"])
            time.sleep(0.01)
        every = poll(lambda: (e := logs(server, name).json()["entries"]) and len(e) == 10 and e)
        assert every, logs(server, name).text
        # newest first: the last call's END line, then its log (the event it echoed; the
        # same on stdout was its result, not logged)
        assert [e["invocation_id"] for e in every] == [i for i in reversed(ids) for _ in (0, 1)]
        assert [e["stream"] for e in every[:2]] == ["platform", "stderr"]
        assert every[1]["line"] == '{"call":4}'
        stamps = [e["ts"] for e in every]
        assert stamps == sorted(stamps, reverse=True)

        assert api.get(f"/api/v1/functions/{name}/logs?limit=3").json()["entries"] == every[:3]
        # since: the third-newest invocation's log line and everything after it
        since = every[5]["ts"]
        assert (
            api.get(f"/api/v1/functions/{name}/logs", params={"since": since}).json()["entries"]
            == every[:6]
        )
        unix = datetime.fromisoformat(every[1]["ts"]).timestamp()
        newer = api.get(f"/api/v1/functions/{name}/logs", params={"since": f"{unix:.6f}"})
        assert newer.json()["entries"] == every[:2]
        future = api.get(f"/api/v1/functions/{name}/logs", params={"since": time.time() + 60})
        assert future.json()["entries"] == []
        # an age, as the stats routes (and `nimbus logs --since`) take it
        recent = api.get(f"/api/v1/functions/{name}/logs", params={"since": "10m"})
        assert recent.status_code == 200 and recent.json()["entries"] == every
        listed = api.get(f"/api/v1/functions/{name}/invocations", params={"since": "10m"})
        assert listed.status_code == 200 and len(listed.json()["invocations"]) == 5
        resp = api.get(f"/api/v1/functions/{name}/logs", params={"since": "yesterday"})
        assert resp.json()["error"]["message"] == (
            "since: use RFC 3339, Unix seconds, or an age such as 15m"
        )

        for query in ("limit=0", "limit=1001", "limit=ten", "since=yesterday", "since=-5"):
            resp = api.get(f"/api/v1/functions/{name}/logs?{query}")
            assert resp.status_code == 422, (query, resp.text)
            assert resp.json()["error"]["details"][0]["field"] == query.split("=")[0]
        assert api.get("/api/v1/functions/no-such-fn/logs").status_code == 404


# -- metrics ---------------------------------------------------------------------


def test_metrics_count_every_invocation_across_workers(make_server):
    # No runtime preloads at worker start: every artifact load below is one of ours.
    server = make_server({"PRELOAD_RUNTIMES": "false"}).start()
    deploy(server, "echo", w.ECHO_WAT)
    deploy(server, "fail", w.FAIL_WAT)
    echoes = invoke_on_both_workers(server, "echo", at_least=7)
    fails = [once(server, "POST", "/api/v1/functions/fail/invoke") for _ in range(3)]

    def scraped() -> str | None:
        text = httpx.get(server.url + "/metrics").text
        counts = [metric(text, "nimbus_invocations_total", function=f) for f in ("echo", "fail")]
        return text if counts == [len(echoes), 3] else None

    text = poll(scraped)
    assert text, httpx.get(server.url + "/metrics").text
    assert metric(
        text,
        "nimbus_invocations_total",
        function="echo",
        status="succeeded",
        error_code="",
        runtime="wasm",
        trigger="api",
    ) == len(echoes)
    assert (
        metric(
            text,
            "nimbus_invocations_total",
            function="fail",
            status="failed",
            error_code="function_error",
        )
        == 3
    )
    assert metric(text, "nimbus_invocation_duration_seconds_count", function="echo") == len(echoes)
    assert metric(text, "nimbus_cold_starts_total", function="echo") == cold_count(echoes) == 2
    assert metric(text, "nimbus_cold_starts_total", function="fail") == cold_count(fails)
    misses = cold_count(echoes) + cold_count(fails)
    assert metric(text, "nimbus_artifact_cache_misses_total") == misses
    hits = len(echoes) + len(fails) - misses
    assert metric(text, "nimbus_artifact_cache_hits_total") == hits
    builds = metric(text, "nimbus_build_duration_seconds_count", runtime="wasm", outcome="ready")
    assert builds == 2
    assert 0 < metric(text, "nimbus_build_duration_seconds_sum") < 60
    assert metric(text, "nimbus_sandbox_cached_artifacts") >= 2  # summed over live workers
    assert metric(text, "nimbus_async_queue_depth") == 0
    assert httpx.get(server.url + "/api/metrics").status_code == 200  # the seed's alias, no key
    assert "nimbus_invocations_total" in httpx.get(server.url + "/api/metrics").text


def test_throttled_calls_are_counted_apart_and_not_logged(make_server):
    """A 429 (no free slot) is a throttle, as Lambda counts them: in its own stats
    field and metric status, never in the total, the durations or the logs."""
    server = make_server({"WORKERS": "1", "MAX_CONCURRENT": "1", "INVOKE_QUEUE_SIZE": "0"}).start()
    deploy(server, "sleeper", w.SLEEP_WAT, timeout_sec=5)
    with ThreadPoolExecutor(6) as pool:
        calls = list(pool.map(lambda _: once(server, "POST", "/api/v1/functions/sleeper/invoke"),
                              range(6)))  # fmt: skip
    ran = [r for r in calls if r.status_code != 429]
    throttled = len(calls) - len(ran)
    assert ran and throttled, [r.status_code for r in calls]

    stats = poll(lambda: _stats(server, len(ran)))
    assert stats and stats["throttled"] == throttled, once(server, "GET", "/api/v1/stats").text
    text = httpx.get(server.url + "/metrics").text
    assert metric(text, "nimbus_invocations_total", function="sleeper", status="throttled",
                  error_code="too_many_requests") == throttled  # fmt: skip
    assert metric(text, "nimbus_invocation_duration_seconds_count", function="sleeper") == len(ran)
    entries = logs(server, "sleeper", limit=100).json()["entries"]
    assert {e["invocation_id"] for e in entries} == {
        r.headers["X-Nimbus-Invocation-Id"] for r in ran
    }


def test_slot_gauges_show_capacity_running_and_waiting_callers(make_server):
    """What the dashboard's "Sandbox slots" and "Throttles" panels plot: the slots
    (MAX_CONCURRENT per worker), the guests in them and the callers queued for one."""
    server = make_server(
        {
            "WORKERS": "1",
            "MAX_CONCURRENT": "1",
            "INVOKE_QUEUE_SIZE": "2",
            "INVOKE_QUEUE_TIMEOUT_SEC": "15",
        }
    ).start()
    # NOTE: the second call must be seen queued while the first still runs: with a 3 s
    # run, a loaded machine's slow first sighting (gauges are sampled per flush) left too
    # little of it (a 2.2 s late second call failed every time). 6 s leaves ~4 s more.
    deploy(server, "sleeper", w.SLEEP_WAT, timeout_sec=6)
    gauges = ("nimbus_sandbox_slots", "nimbus_sandbox_running", "nimbus_sandbox_queued")

    def sampled(want: list[float]):
        def check():
            text = httpx.get(server.url + "/metrics").text
            return text if [metric(text, g) for g in gauges] == want else None

        return check

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(once, server, "POST", "/api/v1/functions/sleeper/invoke")
        assert poll(sampled([1, 1, 0]), timeout=5)
        second = pool.submit(once, server, "POST", "/api/v1/functions/sleeper/invoke")
        text = poll(sampled([1, 1, 1]), timeout=5)  # the second waits for the slot
        assert text, httpx.get(server.url + "/metrics").text
        assert [first.result().status_code, second.result().status_code] == [504, 504]
    assert poll(sampled([1, 0, 0]))
    for native in ("nimbus_native_containers_busy", "nimbus_native_containers_idle"):
        assert f"\n{native} 0.0\n" in text  # exported (no native function ran)


# -- stats -------------------------------------------------------------------------


def _stats(server: NimbusProcess, total: int) -> dict | None:
    body = once(server, "GET", "/api/v1/stats").json()
    return body if body["total_invocations"] == total else None


def test_stats_are_exact_and_survive_restarts(make_server, backend_env, monkeypatch):
    env = {**backend_env, **FAST_UPKEEP}
    server = make_server(env).start()
    deploy(server, "echo", w.ECHO_WAT)
    deploy(server, "fail", w.FAIL_WAT)
    deploy(server, "spin", w.SPIN_WAT, timeout_sec=0.5)
    echoes = invoke_on_both_workers(server, "echo", at_least=6)
    assert {r.status_code for r in echoes} == {200}
    for _ in range(3):
        assert once(server, "POST", "/api/v1/functions/fail/invoke").status_code == 500
    for _ in range(2):
        assert once(server, "POST", "/api/v1/functions/spin/invoke").status_code == 504
    total = len(echoes) + 5

    stats = poll(lambda: _stats(server, total))
    assert stats, once(server, "GET", "/api/v1/stats").text
    assert (stats["succeeded"], stats["failed"], stats["timed_out"]) == (len(echoes), 3, 2)
    assert stats["success_rate"] == pytest.approx(len(echoes) / total)
    assert stats["by_error_type"] == {"function_error": 3, "timeout": 2}
    assert stats["by_function_error_type"] == {"ExitError": 3}
    assert stats["by_trigger"] == {"api": total}
    assert stats["by_runtime"]["wasm"]["total_invocations"] == total
    durations = stats["duration_ms"]
    assert 0 < durations["min"] <= durations["avg"] <= durations["max"]
    assert durations["max"] >= 500  # the timed-out calls ran to their deadline
    assert stats["cold_starts"] >= 4  # echo on both workers, fail and spin at least once
    assert stats["functions"] == {
        "total": 3,
        "by_status": {"active": 3},
        "by_runtime": {"wasm": 3},
    }
    assert (
        once(server, "GET", "/api/v1/stats", headers={"Authorization": "Bearer x"}).status_code
        == 401
    )

    # A graceful stop folds each worker's totals into one object; nothing is lost.
    assert server.stop() == 0
    assert store_keys(server, "stats/workers/", monkeypatch) == []
    assert store_keys(server, "stats/total.json", monkeypatch) == ["stats/total.json"]
    again = make_server(env, data_dir=server.data_dir).start()
    after = poll(lambda: _stats(again, total))
    assert after, once(again, "GET", "/api/v1/stats").text
    for key in ("succeeded", "failed", "timed_out", "by_error_type", "duration_ms", "by_runtime"):
        assert after[key] == stats[key]
    assert once(again, "POST", "/api/v1/functions/echo/invoke").status_code == 200
    assert poll(lambda: _stats(again, total + 1))

    # kill -9: the dead workers' objects stay counted, then a live worker folds them.
    again.kill()
    third = make_server(env, data_dir=server.data_dir).start()
    assert poll(lambda: _stats(third, total + 1))
    # only the two live workers' objects are left once the killed ones are folded
    assert poll(lambda: len(store_keys(third, "stats/workers/", monkeypatch)) <= 2, timeout=15)
    assert _stats(third, total + 1)


# -- quota ---------------------------------------------------------------------------


def test_quota_shows_limits_and_usage_and_refuses_past_max_functions(make_server):
    server = make_server({"MAX_FUNCTIONS": "2", "MAX_CONCURRENT": "3"}).start()
    echo = deploy(server, "echo", w.ECHO_WAT)
    slow = deploy(server, "slow", w.sleep_wat(4.0))
    quota = once(server, "GET", "/api/v1/quota").json()
    limits, usage = quota["limits"], quota["usage"]
    assert limits["max_functions"] == 2
    assert limits["workers"] == 2 and limits["max_concurrent_per_worker"] == 3
    assert limits["max_concurrent"] == 6
    assert limits["code_size_bytes"] == {"source": 512 * 1024, "binary": 50 * 1024 * 1024}
    assert limits["memory_mb"]["max"] == 4096 and limits["timeout_sec"]["max"] == 300
    assert usage["functions"] == 2 and usage["functions_remaining"] == 0
    assert usage["stored_bytes"] == echo["code_size"] + slow["code_size"] > 0
    assert usage["concurrent_invocations"] == {"worker": 0, "server": 0}

    resp = once(
        server,
        "POST",
        "/api/v1/functions",
        json={"name": "third", "runtime": "wasm", "artifact_base64": w.b64(w.wat(w.ECHO_WAT))},
    )
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "quota_exceeded"
    assert resp.json()["error"]["details"] == {"limit": 2, "functions": 2}

    # While a call sleeps, the server-wide count shows it whichever worker answers.
    caller = threading.Thread(target=lambda: once(server, "POST", "/api/v1/functions/slow/invoke"))
    caller.start()
    try:
        running = poll(
            lambda: (
                once(server, "GET", "/api/v1/quota").json()["usage"]["concurrent_invocations"][
                    "server"
                ]
                == 1
            ),
            timeout=3.5,
        )
        assert running
    finally:
        caller.join()
    assert poll(
        lambda: (
            once(server, "GET", "/api/v1/quota").json()["usage"]["concurrent_invocations"]
            == {"worker": 0, "server": 0}
        )
    )


# -- retention and deletion ----------------------------------------------------------


def test_deleting_a_function_deletes_its_logs(server, name, monkeypatch):
    fn = deploy(server, name, w.FAIL_WAT)
    once(server, "POST", f"/api/v1/functions/{name}/invoke")
    assert poll(lambda: logs(server, name).json()["entries"])
    prefix = f"logs/invocations/{fn['id']}/"
    assert store_keys(server, prefix, monkeypatch)
    assert once(server, "DELETE", f"/api/v1/functions/{name}").status_code == 204
    assert store_keys(server, prefix, monkeypatch) == []
    assert logs(server, fn["id"]).status_code == 404


def test_expired_logs_are_swept(make_server, backend_env, monkeypatch):
    server = make_server(
        {
            **backend_env,
            "LOG_RETENTION_HOURS": str(3 / 3600),
            "LOG_SWEEP_INTERVAL_SEC": "0.5",
            "UPKEEP_INTERVAL_SEC": "0.3",
        }
    ).start()
    fn = deploy(server, "short", w.FAIL_WAT)
    inv = once(server, "POST", "/api/v1/functions/short/invoke").headers["X-Nimbus-Invocation-Id"]
    assert poll(lambda: logs(server, "short", invocation_id=inv).json()["entries"])
    prefix = f"logs/invocations/{fn['id']}/"
    assert store_keys(server, prefix, monkeypatch)
    # Retention is 3 s: the batch is deleted (judged from its key alone) soon after.
    assert poll(lambda: not store_keys(server, prefix, monkeypatch), timeout=10)
    assert logs(server, "short").json()["entries"] == []
    assert store_keys(server, "logs/sweep.json", monkeypatch)  # the sweep lease

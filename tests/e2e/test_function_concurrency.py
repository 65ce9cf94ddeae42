"""A function's max_concurrency (Lambda's reserved concurrency as the model) and the
per-function async queue quota, through a real server: a flooded function is
throttled alone, and never starves the others."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.e2e import wasm as w
from tests.e2e.test_async import submit, wait_final
from tests.e2e.test_cli_versions import Nimbus

SLEEPY_PYTHON = """
import time

def main(event, context):
    start = time.time()
    time.sleep(event.get("seconds", 0))
    return {"start": start, "end": time.time()}
"""


def _create(api: httpx.Client, name: str, **fields) -> dict:
    body = {"name": name, "runtime": "python", "code": SLEEPY_PYTHON, **fields}
    resp = api.post("/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201 and resp.json()["status"] == "active", resp.text
    return resp.json()


def _at_once(api: httpx.Client, calls: list[tuple[str, dict]]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(calls))

    def call(target):
        name, event = target
        barrier.wait()
        return api.post(f"/api/v1/functions/{name}/invoke", json=event)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(call, calls))


def test_calls_beyond_max_concurrency_are_429_on_every_worker_and_others_still_run(make_server):
    server = make_server(workers=2).start()  # the cap holds across the server's workers
    with server.client(timeout=60) as api:
        assert _create(api, "capped", max_concurrency=2)["max_concurrency"] == 2
        _create(api, "free")
        answers = _at_once(api, [("capped", {"seconds": 2})] * 5 + [("free", {})])
        capped, free = answers[:5], answers[5]
        assert sorted(a.status_code for a in capped) == [200, 200, 429, 429, 429]
        throttled = next(a for a in capped if a.status_code == 429)
        error = throttled.json()["error"]
        assert error["code"] == "too_many_requests"
        assert error["details"] == {"reason": "function_concurrency_limit", "max_concurrency": 2}
        assert int(throttled.headers["Retry-After"]) >= 1
        assert throttled.headers["X-Nimbus-Invocation-Id"]
        assert free.status_code == 200, free.text  # not starved by the flood
        again = api.post("/api/v1/functions/capped/invoke", json={})
        assert again.status_code == 200, again.text  # the slots came back


def test_max_concurrency_changes_without_a_new_version(api, name):
    _create(api, name)
    resp = api.put(f"/api/v1/functions/{name}", json={"max_concurrency": 0})
    assert resp.status_code == 200 and resp.json()["max_concurrency"] == 0, resp.text
    assert resp.json()["latest_version"] == 1
    deadline = time.monotonic() + 5  # each worker sees the change within ~1 s
    while (resp := api.post(f"/api/v1/functions/{name}/invoke", json={})).status_code != 429:
        assert time.monotonic() < deadline, resp.text
        time.sleep(0.2)
    assert resp.json()["error"]["message"] == (  # not "already runs its … of 0 invocations"
        f"function {name} is throttled: its max_concurrency is 0 (every call is refused until "
        "it is raised or removed)"
    )
    resp = api.put(f"/api/v1/functions/{name}", json={"max_concurrency": None})  # null: no cap
    assert resp.status_code == 200 and resp.json()["max_concurrency"] is None
    while (resp := api.post(f"/api/v1/functions/{name}/invoke", json={})).status_code != 200:
        assert time.monotonic() < deadline + 5, resp.text
        time.sleep(0.2)
    for bad in (-1, 10_001, "two"):
        resp = api.put(f"/api/v1/functions/{name}", json={"max_concurrency": bad})
        assert resp.status_code == 422, resp.text


def test_async_invocations_of_a_capped_function_wait_their_turn(make_server):
    server = make_server(workers=2).start()
    with server.client(timeout=60) as api:
        _create(api, "one-at-a-time", max_concurrency=1)
        ids = [submit(api, "one-at-a-time", {"seconds": 0.5}) for _ in range(4)]
        records = [wait_final(api, i) for i in ids]
        assert [r["status"] for r in records] == ["succeeded"] * 4, records
        assert [r["attempts"] for r in records] == [1] * 4  # waiting spent no attempt
        spans = sorted((r["result"]["start"], r["result"]["end"]) for r in records)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end - 0.05, spans  # never two at once, on either worker


def test_a_functions_async_queue_is_bounded_and_throttled_work_waits(make_server):
    server = make_server({"ASYNC_MAX_QUEUED_PER_FUNCTION": "3"}, workers=1).start()
    with server.client(timeout=60) as api:
        _create(api, "paused", max_concurrency=0)  # accepts, runs nothing yet
        _create(api, "other")
        ids = [submit(api, "paused") for _ in range(3)]
        refused = api.post("/api/v1/functions/paused/async", json={})
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert refused.json()["error"]["details"]["reason"] == "function_queue_limit"
        assert int(refused.headers["Retry-After"]) >= 1
        other = wait_final(api, submit(api, "other"))  # the shared queue still takes others
        assert other["status"] == "succeeded"
        time.sleep(1)
        waiting = [api.get(f"/api/v1/invocations/{i}").json() for i in ids]
        assert [r["status"] for r in waiting] == ["queued"] * 3
        assert [r["attempts"] for r in waiting] == [0] * 3
        resp = api.put("/api/v1/functions/paused", json={"max_concurrency": None})
        assert resp.status_code == 200, resp.text
        assert [wait_final(api, i)["status"] for i in ids] == ["succeeded"] * 3


def test_the_cli_sets_shows_and_removes_max_concurrency(server, tmp_path):
    nimbus = Nimbus(server)
    module = tmp_path / "echo.wasm"
    module.write_bytes(w.wat(w.ECHO_WAT))
    name = f"cli-cap-{uuid.uuid4().hex[:6]}"
    created = nimbus.json("deploy", name, str(module), "--max-concurrency", "3")
    assert created["max_concurrency"] == 3
    shown = nimbus("get", name, output="table")
    assert shown.exit_code == 0 and "max_concurrency" in shown.stdout, shown.output
    paused = nimbus.json("update", name, "--max-concurrency", "0")
    assert paused["max_concurrency"] == 0 and paused["latest_version"] == 1
    assert nimbus.json("update", name, "--max-concurrency", "none")["max_concurrency"] is None
    refused = nimbus("update", name, "--max-concurrency", "lots")
    assert refused.exit_code == 2 and "neither a number nor 'none'" in refused.output

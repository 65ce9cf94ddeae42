"""Canary steps in-process: each interval's decision from the canary version's own calls.

The platform's own scan is slowed to once an hour, so the test's runner takes every
decision; a step is made due by rewriting its job's `next_due` (the interval itself is
covered by tests/e2e/test_canary.py).
"""

from __future__ import annotations

import time

import pytest

from gateway.jobs.canary import CanaryRunner
from gateway.telemetry.window_query import WindowQuery
from store.canaries import CanaryJob, CanaryRepo, canary_key
from store.history import HistoryRepo
from tests.e2e.wasm import FAIL_WAT, b64, wat
from tests.gateway.conftest import running_platform
from tests.gateway.test_versions import FN, deploy

PIN_2 = {"X-Nimbus-Version-Override": "2"}


@pytest.fixture
def world(tmp_path):
    with running_platform(tmp_path, canary_scan_sec=3600) as (platform, client):
        store = platform.store
        query = WindowQuery(store, platform.recorder.flush)
        runner = CanaryRunner(
            platform.repo, CanaryRepo(store), HistoryRepo(store), platform.leases, query
        )
        yield platform, client, runner


def start(client, *, failing: bool = False, **body) -> dict:
    fn = deploy(client, 1)
    if failing:
        resp = client.simulate_put(FN, json={"artifact_base64": b64(wat(FAIL_WAT))},
                                   params={"wait": "true"})  # fmt: skip
        assert resp.json["latest_build"]["status"] == "ready", resp.text
    else:
        deploy(client, 2)
    assert client.simulate_post(f"{FN}/aliases", json={"name": "prod", "version": 1}).status_code
    body = {"version": 2, "steps": [25, 50, 100], "interval_sec": 5, "max_error_rate": 0.25,
            "min_invocations": 4, **body}  # fmt: skip
    resp = client.simulate_post(f"{FN}/aliases/prod/canary", json=body)
    assert resp.status_code == 201, resp.text
    return fn


def step(world, fn: dict) -> dict:
    """Make the canary's next step due now, let the runner decide it, return the alias."""
    platform, client, runner = world
    key = canary_key(fn["id"], "prod")
    job = CanaryJob.model_validate_json(platform.store.get(key).data)
    job.next_due = 0
    platform.store.put(key, job.model_dump_json().encode())
    runner.scan()
    return client.simulate_get(f"{FN}/aliases/prod").json


def call_canary(client, times: int) -> list[int]:
    return [client.simulate_post(f"{FN}:prod/invoke", json={}, headers=PIN_2).status_code
            for _ in range(times)]  # fmt: skip


def test_a_quiet_step_holds_with_its_reason_shown_and_its_calls_add_up(world):
    client = world[1]
    fn = start(client)
    alias = step(world, fn)
    canary = alias["canary"]
    assert canary["status"] == "progressing" and alias["routing"] == {"2": 25.0}
    assert canary["reason"] == "waiting for traffic: 0 of 4 invocations in 1 interval of 5 s"
    for _ in range(5):  # "hold" (the default) waits for traffic as long as it takes
        canary = step(world, fn)["canary"]
    assert canary["status"] == "progressing" and canary["held"] == 6
    assert canary["reason"] == "waiting for traffic: 0 of 4 invocations in 6 intervals of 5 s"
    call_canary(client, 2)
    canary = step(world, fn)["canary"]
    assert canary["reason"] == "waiting for traffic: 2 of 4 invocations in 7 intervals of 5 s"
    assert [(e["decision"], e["invocations"]) for e in canary["history"]] == [
        ("started", 0),
        ("held", 2),  # one held entry per step, however long it waits
    ]
    call_canary(client, 2)  # 4 since the step began: enough to judge
    alias = step(world, fn)
    canary = alias["canary"]
    assert (canary["step"], canary["weight"], canary["held"], canary["reason"]) == (1, 50, 0, "")
    assert alias["routing"] == {"2": 50.0}
    assert [e["decision"] for e in canary["history"]] == ["started", "held", "promoted"]


def test_a_new_step_does_not_count_the_calls_of_the_step_before(world):
    """Stats come in 10 s slots; the calls the previous step put in the slot a step began
    in are taken off, so each step is judged on its own calls."""
    client = world[1]
    fn = start(client)  # steps 25, 50, 100
    call_canary(client, 4)
    assert step(world, fn)["canary"]["step"] == 1  # promoted on its 4 calls
    canary = step(world, fn)["canary"]
    assert (canary["status"], canary["held"]) == ("progressing", 1)
    assert canary["history"][-1]["invocations"] == 0, canary["history"]
    call_canary(client, 4)
    canary = step(world, fn)["canary"]
    assert (canary["status"], canary["weight"]) == ("promoted", 100), canary["history"]
    assert canary["history"][-1]["invocations"] == 4


def test_a_quiet_canary_promotes_by_time_when_asked(world):
    client = world[1]
    fn = start(client, on_idle="promote", idle_intervals=2, steps=[50, 100])
    assert step(world, fn)["canary"]["status"] == "progressing"  # 1 of 2 quiet intervals
    call_canary(client, 1)
    alias = step(world, fn)
    canary = alias["canary"]
    assert canary["status"] == "promoted" and alias["version"] == 2 and alias["routing"] == {}
    promoted = canary["history"][-1]
    assert promoted["decision"] == "promoted" and promoted["invocations"] == 1
    assert promoted["reason"] == "promoted by time: 1 of 4 invocations in 2 intervals of 5 s"
    history = client.simulate_get(f"{FN}/history").json["entries"]
    assert (history[0]["action"], history[0]["to_version"]) == ("canary_promoted", 2)


def test_errors_past_a_full_steps_budget_stop_a_promotion_by_time(world):
    client = world[1]
    fn = start(client, failing=True, on_idle="promote", idle_intervals=1, min_invocations=10,
               max_error_rate=0.1)  # fmt: skip
    assert call_canary(client, 2) == [500, 500]  # 2 errors > 0.1 × 10 allowed
    alias = step(world, fn)
    assert alias["canary"]["status"] == "rolled_back" and alias["version"] == 1
    assert alias["canary"]["reason"].startswith("2 errors > 1 allowed in a full step")


def test_a_quiet_canary_rolls_back_when_asked(world):
    platform, client, _ = world
    fn = start(client, on_idle="rollback", idle_intervals=1)
    alias = step(world, fn)
    assert alias["canary"]["status"] == "rolled_back"
    assert alias["canary"]["reason"].startswith("too little traffic to judge: 0 of 4")
    assert (alias["version"], alias["routing"]) == (1, {})
    assert not CanaryRepo(platform.store).exists(fn["id"], "prod")


def test_throttled_calls_do_not_count_against_the_canary(world):
    client = world[1]
    fn = start(client, min_invocations=2)
    assert client.simulate_put(FN, json={"max_concurrency": 0}).status_code == 200
    assert call_canary(client, 5) == [429] * 5  # refused before running: not the version's fault
    assert client.simulate_put(FN, json={"max_concurrency": None}).status_code == 200
    time.sleep(1.1)  # the invoke path's record cache
    assert call_canary(client, 2) == [200, 200]
    last = step(world, fn)["canary"]["history"][-1]
    assert (last["decision"], last["invocations"], last["errors"]) == ("promoted", 2, 0)


def test_a_slow_canary_is_rolled_back_on_p99(world):
    client = world[1]
    fn = start(client, min_invocations=2, max_p99_ms=0.001)
    call_canary(client, 2)
    alias = step(world, fn)
    assert alias["canary"]["status"] == "rolled_back" and alias["version"] == 1
    assert alias["canary"]["reason"].startswith("p99 ") and alias["canary"]["reason"].endswith(
        "> 0.001 ms"
    )


def test_a_held_interval_is_decided_once_even_if_the_job_write_was_lost(world):
    platform, client, _ = world
    fn = start(client)
    assert step(world, fn)["canary"]["held"] == 1
    key = canary_key(fn["id"], "prod")
    job = CanaryJob.model_validate_json(platform.store.get(key).data)
    assert (job.step, job.held) == (0, 1)
    job.held = 0  # as if the worker died between the alias write and the job write
    platform.store.put(key, job.model_dump_json().encode())
    assert step(world, fn)["canary"]["held"] == 1  # caught up, not held twice
    job = CanaryJob.model_validate_json(platform.store.get(key).data)
    assert (job.step, job.held) == (0, 1) and job.next_due > 0


def test_canary_bodies_and_abort(world):
    platform, client, _ = world
    fn = start(client)
    again = client.simulate_post(f"{FN}/aliases/prod/canary", json={"version": 2})
    assert again.status_code == 409 and again.json["error"]["code"] == "canary_running"
    bodies = (({"interval_sec": 4}, "interval_sec"), ({"on_idle": "wait"}, "on_idle"),
              ({"idle_intervals": 0}, "idle_intervals"),
              ({"steps": [50, 20]}, "steps"))  # fmt: skip
    for bad, field in bodies:
        resp = client.simulate_post(f"{FN}/aliases/other/canary", json={"version": 2, **bad})
        assert resp.status_code == 422 and field in resp.text, (bad, resp.text)
    aborted = client.simulate_delete(f"{FN}/aliases/prod/canary")
    assert aborted.status_code == 200, aborted.text
    alias = aborted.json
    assert alias["canary"]["status"] == "aborted" and (alias["version"], alias["routing"]) == (
        1,
        {},
    )
    assert not CanaryRepo(platform.store).exists(fn["id"], "prod")
    assert client.simulate_delete(f"{FN}/aliases/prod/canary").status_code == 404
    history = client.simulate_get(f"{FN}/history").json["entries"]
    assert (history[0]["action"], history[0]["from_version"], history[0]["to_version"]) == (
        "canary_aborted", 2, 1)  # fmt: skip
    fresh = client.simulate_post(f"{FN}/aliases/prod/canary", json={"version": 2})
    assert fresh.status_code == 201 and fresh.json["canary"]["interval_sec"] == 60  # the default
    assert fresh.json["canary"]["steps"] == [10, 25, 50, 100]

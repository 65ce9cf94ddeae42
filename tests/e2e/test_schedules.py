"""Schedules through real servers: two `nimbus serve` on one SeaweedFS store fire each tick
of a function's and a workflow's schedule exactly once, one of them killed -9 mid-way;
of the ticks that fell while no server ran, those of the last grace are fired late; a
store that ignores create-only writes is refused."""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta

import httpx
import pytest

from store import open_store
from store.invocations import invocation_key
from store.records import Invocation
from tests.e2e.conftest import s3_env
from tests.e2e.wasm import b64, constant_wat, wat

RUN_SEC = 20


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _every_second(api: httpx.Client, name: str, result: bytes = b"1") -> httpx.Response:
    """Deploy a function `name` answering `result` and give it a rate(1 second) schedule."""
    body = {"name": name, "runtime": "wasm", "timeout_sec": 2,
            "artifact_base64": b64(wat(constant_wat(result)))}  # fmt: skip
    assert api.post("/api/v1/functions?wait=true", json=body).status_code == 201
    made = api.post(f"/api/v1/functions/{name}/schedules", json={"expression": "rate(1 second)"})
    assert made.status_code == 201, made.text
    return made


PASS_THROUGH = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}


def _ticks_between(created_at: str, switched_off_at: str) -> int:
    """How many ticks of a rate(1 second) schedule fall after its creation (its anchor,
    whole second) up to its switch-off."""
    anchor = datetime.fromisoformat(created_at).replace(microsecond=0)
    return int((datetime.fromisoformat(switched_off_at) - anchor).total_seconds())


def _started_executions(api: httpx.Client, workflow: str) -> list[datetime]:
    """The tick times of a workflow's executions, each one seen through to success."""
    listed = api.get(f"/api/v1/workflows/{workflow}/executions", params={"limit": 100}).json()
    assert listed["total"] == len(listed["executions"]) < 100
    deadline = time.monotonic() + 30
    starts = []
    for execution in listed["executions"]:
        while execution["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            execution = api.get(f"/api/v1/executions/{execution['id']}").json()
        assert (execution["status"], execution["output"]) == ("succeeded", {"n": 1}), execution
        starts.append(datetime.fromisoformat(execution["started_at"]))
    return sorted(starts)


def _tick_records(env: dict[str, str], schedule_id: str) -> list[Invocation]:
    """Every invocation record in the store that belongs to the schedule, whatever its id."""
    store = open_store(env["NIMBUS_STORE"], endpoint_url=env.get("S3_ENDPOINT_URL"),
                       region=env.get("AWS_REGION"))  # fmt: skip
    records = []
    for key in store.list("invocations/"):
        record = Invocation.model_validate_json(store.get(key).data)
        if record.schedule_id == schedule_id:
            assert key == invocation_key(record.id)
            records.append(record)
    return records


@pytest.mark.s3
def test_two_servers_fire_every_tick_once_and_one_killed_midway_costs_none(
    e2e_seaweedfs, make_server, monkeypatch
):
    env = {**s3_env(e2e_seaweedfs), "ASYNC_LEASE_MARGIN_SEC": "2", "ASYNC_POLL_SEC": "0.2"}
    for name, value in e2e_seaweedfs.env().items():
        monkeypatch.setenv(name, value)  # this test reads the store too
    first, second = make_server(env).start(), make_server(env).start()
    with first.client() as api:
        made = _every_second(api, "every-second", b'{"tick": true}')
        sid = made.json()["id"]
        # A workflow's schedule on the same servers: each tick starts one execution.
        flow = {"name": "every-second", "definition": PASS_THROUGH}
        assert api.post("/api/v1/workflows", json=flow).status_code == 201
        flow_made = api.post("/api/v1/workflows/every-second/schedules",
                             json={"expression": "rate(1 second)", "event": {"n": 1}})  # fmt: skip
        assert flow_made.status_code == 201, flow_made.text
    time.sleep(RUN_SEC / 2)
    first.kill()  # -9, master and workers: mid-way through the ticks
    killed_at = time.time()
    time.sleep(RUN_SEC / 2)
    with second.client() as api:
        stopped = api.put(f"/api/v1/functions/every-second/schedules/{sid}",
                          json={"enabled": False})  # fmt: skip
        assert stopped.status_code == 200
        flow_path = f"/api/v1/workflows/every-second/schedules/{flow_made.json()['id']}"
        flow_stopped = api.put(flow_path, json={"enabled": False})
        assert flow_stopped.status_code == 200
        time.sleep(2)  # the workers notice within ~1 s

        records = _tick_records(env, sid)
        ticks = sorted(r.scheduled_at for r in records)
        assert len(ticks) == len(set(ticks))  # no tick fired twice
        span = (ticks[-1] - ticks[0]).total_seconds()
        assert ticks == [ticks[0] + timedelta(seconds=i) for i in range(len(ticks))]  # no gap
        assert RUN_SEC - 2 <= len(ticks) <= RUN_SEC + 4, (len(ticks), span)
        assert ticks[-1].timestamp() > killed_at + RUN_SEC / 2 - 3  # the survivor kept firing
        # Exactly the ticks from the schedule's anchor to its switch-off, give or take
        # one at either edge (the first may fall before a worker loaded the schedule, one
        # more may fire before the workers saw the switch-off).
        expected = _ticks_between(made.json()["created_at"], stopped.json()["updated_at"])
        assert abs(len(ticks) - expected) <= 1, (len(ticks), expected)

        starts = _started_executions(api, "every-second")
        assert len(starts) == len(set(starts))  # no execution started twice for a tick
        assert starts == [starts[0] + timedelta(seconds=i) for i in range(len(starts))]
        expected = _ticks_between(flow_made.json()["created_at"],
                                  flow_stopped.json()["updated_at"])  # fmt: skip
        assert abs(len(starts) - expected) <= 1, (len(starts), expected)
        print(f"\nticks fired {len(ticks)}, executions started {len(starts)}, "
              f"ticks between creation and switch-off {expected}")  # fmt: skip

        # Each tick ran (a run the killed server held is taken over when its lease ends).
        deadline = time.monotonic() + 30
        for record in records:
            while True:
                got = api.get(f"/api/v1/invocations/{record.id}").json()
                if got["status"] not in ("queued", "running") or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert got["status"] == "succeeded", got
            assert got["result"] == {"tick": True}
            assert (got["trigger"], got["schedule_id"]) == ("schedule", sid)
            assert datetime.fromisoformat(got["scheduled_at"]) == record.scheduled_at
        runs = [r.attempts for r in _tick_records(env, sid)]
        assert sum(1 for n in runs if n > 1) <= 2, runs  # only what the killed server held

        view = api.get(f"/api/v1/functions/every-second/schedules/{sid}").json()
        assert datetime.fromisoformat(view["last_run_at"]) == ticks[-1]
        metrics = api.get("/metrics").text  # the survivor's workers: what they fired and ran
        counted = {  # every outcome is listed from the start (at 0): these counted some
            line.split('"')[1]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("nimbus_schedule_ticks_total{")
        }
        assert counted["fired"] > 0 and counted["taken"] > 0, counted
        assert 'trigger="schedule"' in metrics

    lateness = [(r.created_at - r.scheduled_at).total_seconds() for r in records]
    p50, p99 = _percentile(lateness, 50), _percentile(lateness, 99)
    print(f"\ntick precision over {len(lateness)} ticks: p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {max(lateness) * 1000:.0f} ms, "
          f"mean {statistics.mean(lateness) * 1000:.0f} ms")  # fmt: skip
    assert min(lateness) >= -0.05  # never early (beyond clock reading noise)
    assert p99 < 1.0  # the contract: created_at within 1 s of scheduled_at


def test_a_restart_fires_the_ticks_of_its_last_grace_late_and_loses_older_ones(make_server):
    """A server stopped (SIGTERM, as an upgrade does) and started again 6 s later: the ticks
    of the last SCHEDULE_MISFIRE_GRACE_SEC (3 s here) before it ticks again are fired late,
    each once; older ones in the gap are lost, as documented."""
    env = {"ASYNC_POLL_SEC": "0.2", "SCHEDULE_MISFIRE_GRACE_SEC": "3"}
    server = make_server(env).start()
    with server.client() as api:
        sid = _every_second(api, "missable").json()["id"]
        time.sleep(3)  # a few ticks fire
    assert server.stop() == 0
    stopped_at = time.time()
    time.sleep(6)  # six ticks fall while no server runs
    restarted_at = time.time()
    again = make_server(env, data_dir=server.data_dir).start()
    ready_at = time.time()
    time.sleep(3)
    with again.client() as api:
        stopped = api.put(f"/api/v1/functions/missable/schedules/{sid}", json={"enabled": False})
        assert stopped.status_code == 200
    time.sleep(1.5)  # a tick in flight at the switch-off lands

    records = _tick_records({"NIMBUS_STORE": f"file://{server.data_dir}"}, sid)
    before = sorted(r.scheduled_at for r in records if r.scheduled_at.timestamp() <= stopped_at)
    after = sorted(
        (r for r in records if r.scheduled_at.timestamp() > stopped_at),
        key=lambda r: r.scheduled_at,
    )
    assert len(before) >= 2 and len(after) >= 4, (before, after)
    ticks = [r.scheduled_at for r in after]
    assert ticks == [ticks[0] + timedelta(seconds=i) for i in range(len(ticks))]  # once each
    first = ticks[0].timestamp()
    late = [r for r in after if (r.created_at - r.scheduled_at).total_seconds() > 0.5]
    lost = int(first - before[-1].timestamp()) - 1
    down, start = restarted_at - stopped_at, ready_at - restarted_at
    print(f"\n{len(late)} ticks of the gap fired late, {lost} lost; down {down:.1f} s, "
          f"/ready {start:.1f} s later")  # fmt: skip
    assert late == after[: len(late)]  # the gap's first, then on time
    assert 2 <= len(late) <= 4, (stopped_at, restarted_at, ready_at, ticks)  # ~ the grace
    assert lost >= 2  # older than the grace when the new server looked

    # The function's log says which trigger ran it and which schedule.
    with again.client() as api:
        deadline = time.monotonic() + 15
        while True:
            entries = api.get("/api/v1/functions/missable/logs",
                              params={"invocation_id": after[0].id}).json()["entries"]  # fmt: skip
            ends = [e["line"] for e in entries if e["line"].startswith("END")]
            if ends or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    assert ends and "trigger=schedule" in ends[0] and f"source={sid}" in ends[0], entries


def test_tick_records_are_deleted_after_the_invocation_retention(make_server):
    server = make_server({"INVOCATION_RETENTION_HOURS": "0.001",  # 3.6 s
                          "INVOCATION_SWEEP_INTERVAL_SEC": "0.5"}).start()  # fmt: skip
    with server.client() as api:
        sid = _every_second(api, "short-lived").json()["id"]
        path = f"/api/v1/functions/short-lived/schedules/{sid}"
        deadline = time.monotonic() + 20
        while (first := api.get(path).json()["last_invocation_id"]) is None:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        while api.get(f"/api/v1/invocations/{first}").status_code == 200:
            assert time.monotonic() < deadline, f"{first} was kept past the retention"
            time.sleep(0.2)
        latest = api.get(path).json()["last_invocation_id"]
        assert latest != first and api.get(f"/api/v1/invocations/{latest}").status_code == 200


@pytest.mark.s3
def test_a_store_that_ignores_create_only_writes_runs_no_schedules(
    store_ignoring_create_only, make_server
):
    # Told to degrade: by default such a store is refused (tests/e2e/test_store_check.py).
    env = {**store_ignoring_create_only, "STORE_WITHOUT_CONDITIONAL_WRITES": "degrade"}
    server = make_server(env).start()
    deadline = time.monotonic() + 20
    while (ready := httpx.get(f"{server.url}/ready")).json()["status"] != "degraded":
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.2)
    assert ready.status_code == 200  # everything else still serves
    assert "If-None-Match" in ready.json()["schedules"]
    assert "schedules refused" in server.log_path.read_text()
    with server.client() as api:
        made = _every_second(api, "never-ticked")  # kept, to run once the store is fixed
        time.sleep(2.5)
        view = api.get(f"/api/v1/functions/never-ticked/schedules/{made.json()['id']}").json()
        assert view["last_run_at"] is None

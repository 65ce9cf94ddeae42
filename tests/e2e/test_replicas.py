"""Three `nimbus serve` replicas on one SeaweedFS store behave as one platform.

Each replica is a separate server (one gunicorn worker, its own port and data
folder); they share nothing but the S3 store. Everything is checked from
outside, over HTTP, the way a load balancer's clients would see it.

Tests that need work to be *held by* replica A when it dies pause B and C
(SIGSTOP on their process groups) while A takes the work, then kill A with -9
and resume them: what A held is finished by B or C, or the test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e import wasm as w
from tests.e2e.conftest import s3_env
from tests.e2e.server import NimbusProcess
from tests.e2e.test_observability import deploy, metric, poll
from tests.e2e.test_observability import once as call

pytestmark = pytest.mark.s3

# Short leases and polls so a dead replica's work is taken over in seconds, not minutes.
ENV = {
    "WORKERS": "1",
    "PRELOAD_RUNTIMES": "false",  # every function here is a small wasm module
    "PREWARM_PER_FUNCTION": "0",
    "BUILD_LEASE_SEC": "3",
    "BUILD_POLL_SEC": "0.2",
    "ASYNC_LEASE_MARGIN_SEC": "2",
    "ASYNC_POLL_SEC": "0.2",
    "WORKFLOW_LEASE_SEC": "2",
    "WORKFLOW_SCAN_SEC": "0.2",
}


class Replicas:
    """Three servers on one store; a killed one is started again before the next test."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.servers = [
            NimbusProcess(root / f"replica-{name}", {**env, **ENV}, workers=1) for name in "abc"
        ]

    def __getitem__(self, index: int) -> NimbusProcess:
        return self.servers[index]

    def start_dead(self) -> None:
        dead = [s for s in self.servers if s.proc is None or s.proc.poll() is not None]
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda s: s.start(timeout=60), dead))

    def stop(self) -> None:
        for server in self.servers:
            self.resume(server)
            server.stop()

    @staticmethod
    def resume(server: NimbusProcess) -> None:
        if server.proc is not None and server.proc.poll() is None:
            os.killpg(server.proc.pid, signal.SIGCONT)

    @contextlib.contextmanager
    def paused(self, *servers: NimbusProcess) -> Iterator[None]:
        """SIGSTOP these servers (master and worker) so that another one takes the work."""
        for server in servers:
            os.killpg(server.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for server in servers:
                self.resume(server)

    def owner_of(self, lease_owner: str) -> NimbusProcess:
        """The replica whose worker wrote `lease_owner` (host-pid-random)."""
        pid = int(lease_owner.rsplit("-", 2)[1])
        return next(s for s in self.servers if pid in s.worker_pids())


@pytest.fixture(scope="module")
def replicas(e2e_seaweedfs, tmp_path_factory) -> Iterator[Replicas]:
    group = Replicas(tmp_path_factory.mktemp("replicas"), s3_env(e2e_seaweedfs))
    try:
        group.start_dead()
        yield group
    finally:
        group.stop()


@pytest.fixture
def abc(replicas: Replicas) -> Replicas:
    replicas.start_dead()  # after a test that killed one
    return replicas


def stale_for(server: NimbusProcess, path: str, ok: Callable[[httpx.Response], bool],
              since: float, timeout: float = 5) -> float:  # fmt: skip
    """Seconds from `since` to the *sending* of the last request whose answer `ok` refused
    (0 if none), asking until one is accepted: how long the server answered as before.

    NOTE: not the sending of the first accepted one. Under load a request sent just before
    the server's record cache expired came back old, and the next one left 1.04 s after
    the change (a full second of calls at load 16): late by the client's round trip, not
    by the server's staleness."""
    deadline, stale = since + timeout, 0.0
    while True:
        sent = time.monotonic()
        resp = call(server, "POST", path, json={})
        if ok(resp):
            return stale
        stale = sent - since
        assert sent < deadline, f"{server.url}{path}: still {resp.status_code} {resp.text}"
        time.sleep(0.02)


def name() -> str:
    return f"rep-{uuid.uuid4().hex[:8]}"


# -- one platform: what one replica writes, the others serve -------------------


def test_a_function_created_on_a_is_served_by_b_and_c_within_a_second(abc):
    a, b, c = abc
    fn = name()
    path = f"/api/v1/functions/{fn}/invoke"
    for server in (b, c):  # B and C have looked the name up before it existed
        assert call(server, "POST", path, json={}).status_code == 404
    deploy(a, fn, w.constant_wat(b'{"made_on":"a"}'))
    created = time.monotonic()
    for server in (b, c):
        took = stale_for(server, path, lambda r: r.status_code == 200, created)
        assert took < 1.0, f"{server.url} answered 404 for {took:.2f} s after the create"
        assert call(server, "POST", path, json={}).json() == {"made_on": "a"}


def test_an_update_on_b_is_served_by_a_within_a_second(abc):
    a, b, _ = abc
    fn = name()
    path = f"/api/v1/functions/{fn}/invoke"
    deploy(a, fn, w.constant_wat(b'{"v":1}'))
    assert call(a, "POST", path, json={}).json() == {"v": 1}  # A has v1 in its cache
    update = {"artifact_base64": w.b64(w.wat(w.constant_wat(b'{"v":2}')))}
    resp = call(b, "PUT", f"/api/v1/functions/{fn}?wait=true", json=update)
    assert resp.status_code == 200 and resp.json()["active_version"] == 2, resp.text
    updated = time.monotonic()
    took = stale_for(a, path, lambda r: r.json() == {"v": 2}, updated)
    assert took < 1.0, f"A served v1 for {took:.2f} s after the update"
    assert call(a, "POST", path, json={}).headers["X-Nimbus-Version"] == "2"


def test_an_alias_weight_change_on_a_is_followed_by_every_replica(abc):
    a, b, c = abc
    fn = name()
    deploy(a, fn, w.constant_wat(b'{"v":1}'))
    update = {"artifact_base64": w.b64(w.wat(w.constant_wat(b'{"v":2}')))}
    assert call(b, "PUT", f"/api/v1/functions/{fn}?wait=true", json=update).status_code == 200
    made = call(c, "POST", f"/api/v1/functions/{fn}/aliases", json={"name": "prod", "version": 1})
    assert made.status_code == 201, made.text
    path = f"/api/v1/functions/{fn}:prod/invoke"
    for server in (a, b, c):  # each has the alias cached on version 1
        poll(lambda s=server: call(s, "POST", path, json={}).status_code == 200, timeout=2)
        assert call(server, "POST", path, json={}).json() == {"v": 1}

    moved = call(a, "PUT", f"/api/v1/functions/{fn}/aliases/prod",
                 json={"version": 1, "routing": {"2": 100}})  # fmt: skip
    assert moved.status_code == 200 and moved.json()["routing"] == {"2": 100.0}, moved.text
    changed = time.monotonic()
    for server in (a, b, c):
        took = stale_for(server, path, lambda r: r.json() == {"v": 2}, changed)
        assert took < 1.0, f"{server.url} served v1 for {took:.2f} s after the weight change"
    for server in (a, b, c):  # and all of them stay on it
        served = {call(server, "POST", path, json={}).headers["X-Nimbus-Version"]
                  for _ in range(10)}  # fmt: skip
        assert served == {"2"}


def test_stats_and_logs_agree_from_every_replica(abc):
    a, b, c = abc
    fn = name()
    deploy(a, fn, w.ECHO_WAT)
    per_replica = 12
    invocation_ids = set()
    for i in range(per_replica):
        for server in abc.servers:
            resp = call(server, "POST", f"/api/v1/functions/{fn}/invoke", json={"i": i})
            assert resp.status_code == 200
            invocation_ids.add(resp.headers["X-Nimbus-Invocation-Id"])
    calls = 3 * per_replica

    def stats(server: NimbusProcess) -> dict | None:
        body = call(server, "GET", f"/api/v1/functions/{fn}/stats", params={"since": "5m"}).json()
        return body if body["totals"]["invocations"] == calls else None

    views = [poll(lambda s=s: stats(s), timeout=5) for s in (a, b, c)]
    assert all(views), "a replica never counted every call"
    for view in views:
        assert view["by_version"]["1"]["invocations"] == calls
        assert view["by_version"]["1"]["succeeded"] == calls
        assert view["totals"]["cold_starts"] == 3  # one per replica's worker
    assert views[0]["by_version"] == views[1]["by_version"] == views[2]["by_version"]

    def logged(server: NimbusProcess) -> set[str] | None:
        entries = call(server, "GET", f"/api/v1/functions/{fn}/logs",
                       params={"limit": 1000}).json()["entries"]  # fmt: skip
        seen = {e["invocation_id"] for e in entries}
        return seen if seen == invocation_ids else None

    for server in (a, b, c):
        assert poll(lambda s=server: logged(s), timeout=5), f"{server.url}'s logs differ"
        listed = call(server, "GET", f"/api/v1/functions/{fn}/invocations",
                      params={"limit": 100}).json()["invocations"]  # fmt: skip
        assert {i["id"] for i in listed} == invocation_ids


def test_a_one_second_schedule_fires_each_tick_once_across_three_replicas(abc):
    a, b, c = abc
    fn = name()
    deploy(a, fn, w.constant_wat(b'{"tick":true}'), timeout_sec=2)

    def offered() -> list[tuple[float, float]]:
        """Per replica: the ticks it fired, and those it offered but another had fired."""
        texts = [call(s, "GET", "/metrics").text for s in (a, b, c)]
        ticks = "nimbus_schedule_ticks_total"
        return [(metric(t, ticks, outcome="fired"), metric(t, ticks, outcome="taken"))
                for t in texts]  # fmt: skip

    before = offered()
    made = call(b, "POST", f"/api/v1/functions/{fn}/schedules",
                json={"expression": "rate(1 second)"})  # fmt: skip
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    time.sleep(6)
    stopped = call(c, "PUT", f"/api/v1/functions/{fn}/schedules/{sid}", json={"enabled": False})
    assert stopped.status_code == 200
    time.sleep(2)  # every replica sees the change within ~1 s; a tick in flight lands

    def ticks() -> list[dict] | None:
        query = {"trigger": "schedule", "limit": 100}
        listed = call(a, "GET", f"/api/v1/functions/{fn}/invocations", params=query)
        listed = listed.json()["invocations"]
        if any(i["status"] in ("queued", "running") for i in listed):
            return None
        return [call(a, "GET", f"/api/v1/invocations/{i['id']}").json() for i in listed]

    records = poll(ticks, timeout=10, every=0.2)
    assert records, "scheduled invocations never finished"
    scheduled = sorted(datetime.fromisoformat(r["scheduled_at"]) for r in records)
    assert len(scheduled) == len(set(scheduled)), "a tick fired twice"
    assert scheduled == [scheduled[0] + timedelta(seconds=i) for i in range(len(scheduled))]
    assert 4 <= len(scheduled) <= 9, len(scheduled)
    assert all(r["status"] == "succeeded" and r["result"] == {"tick": True} for r in records)
    assert all(r["schedule_id"] == sid and r["attempts"] == 1 for r in records)
    # all three offered (nearly) every tick; exactly one of them fired each
    deltas = [(f1 - f0, t1 - t0) for (f0, t0), (f1, t1) in zip(before, offered(), strict=True)]
    assert sum(fired for fired, _ in deltas) == len(scheduled), deltas
    assert all(fired + taken >= len(scheduled) - 1 for fired, taken in deltas), deltas


# -- one platform when a replica dies: what A held, B or C finishes --------------


def test_an_async_invocation_accepted_on_a_completes_when_a_is_killed(abc):
    a, b, c = abc
    fn = name()
    deploy(a, fn, w.sleep_wat(2, b'{"slept":true}'), timeout_sec=3)
    with abc.paused(b, c):  # only A's worker can claim it
        accepted = call(a, "POST", f"/api/v1/functions/{fn}/async", json={})
        assert accepted.status_code == 202, accepted.text
        invocation = accepted.json()["invocation_id"]
        running = poll(lambda: call(a, "GET", f"/api/v1/invocations/{invocation}").json()
                        ["status"] == "running", timeout=10)  # fmt: skip
        assert running, "A never started the invocation"
        a.kill()  # -9, master and worker, mid-run
    killed = time.monotonic()

    def final() -> dict | None:
        record = call(b, "GET", f"/api/v1/invocations/{invocation}").json()
        return record if record["status"] not in ("queued", "running") else None

    record = poll(final, timeout=30, every=0.1)
    assert record, "the invocation A held was never finished"
    assert record["status"] == "succeeded" and record["result"] == {"slept": True}, record
    assert record["attempts"] == 2  # A's run, then B's or C's
    # A's lease (timeout 3 s + margin 2 s) ran out, then a 2 s run
    assert time.monotonic() - killed < 15
    assert call(c, "GET", f"/api/v1/invocations/{invocation}").json() == record


def test_a_build_started_on_a_finishes_on_another_replica_when_a_dies(abc):
    a, b, c = abc
    fn = name()
    slow = w.module_with(20000)  # compiling it takes ~3 s: a build caught in flight
    with abc.paused(b, c):
        body = {"name": fn, "runtime": "wasm", "artifact_base64": w.b64(slow)}
        made = call(a, "POST", "/api/v1/functions", json=body)
        assert made.status_code == 201, made.text
        building = poll(lambda: call(a, "GET", f"/api/v1/functions/{fn}/build").json()
                         ["status"] == "building", timeout=20)  # fmt: skip
        assert building, "A never started the build"
        a.kill()

    def finished() -> dict | None:
        build = call(b, "GET", f"/api/v1/functions/{fn}/build").json()
        return build if build["status"] in ("ready", "failed") else None

    build = poll(finished, timeout=60, every=0.2)
    assert build and build["status"] == "ready", build
    assert build["attempts"] == 2  # A's interrupted attempt, then the one that finished
    line = next(x for x in build["log"].splitlines() if "attempt 2" in x)
    finisher = abc.owner_of(line.rsplit("worker ", 1)[1].strip())
    assert finisher in (b, c)
    for server in (b, c):
        resp = call(server, "POST", f"/api/v1/functions/{fn}/invoke", json={})
        assert resp.status_code == 200 and resp.headers["X-Nimbus-Version"] == "1"


def test_a_workflow_started_on_a_continues_when_a_is_killed(abc):
    a, b, c = abc
    nap, add = name(), name()
    deploy(a, nap, w.sleep_wat(2, b'{"napped":2}'), timeout_sec=5)
    deploy(a, add, w.ECHO_WAT)
    definition = {
        "StartAt": "Nap",
        "States": {
            "Nap": {"Type": "Task", "Resource": nap, "Next": "Pause"},
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Echo"},
            "Echo": {"Type": "Task", "Resource": add, "Parameters": {"done.$": "$.napped"},
                     "End": True},
        },
    }  # fmt: skip
    flow = name()
    made = call(a, "POST", "/api/v1/workflows", json={"name": flow, "definition": definition})
    assert made.status_code == 201, made.text

    def events(server: NimbusProcess, execution: str) -> list[dict]:
        return call(server, "GET", f"/api/v1/executions/{execution}/history").json()["events"]

    with abc.paused(b, c):
        started = call(a, "POST", f"/api/v1/workflows/{flow}/executions", json={})
        assert started.status_code == 202, started.text
        execution = started.json()["id"]
        assert poll(lambda: any(e["type"] == "TaskStarted" for e in events(a, execution)),
                     timeout=10), "A never started the first Task"  # fmt: skip
        a.kill()

    def done() -> dict | None:
        body = call(c, "GET", f"/api/v1/executions/{execution}").json()
        return body if body["status"] != "running" else None

    result = poll(done, timeout=40, every=0.2)
    assert result and result["status"] == "succeeded", result
    assert result["output"] == {"done": 2}
    history = events(b, execution)
    claimed = [e["details"]["owner"] for e in history if e["type"] == "ExecutionClaimed"]
    assert claimed and all(abc.owner_of(o) in (b, c) for o in claimed)
    assert sum(e["type"] == "TaskSucceeded" for e in history) == 2

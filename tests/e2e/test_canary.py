"""The automatic canary through a real 2-worker server: rolled back by itself, or promoted."""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import pytest

from tests.e2e import wasm as w
from tests.e2e.conftest import s3_env
from tests.e2e.test_observability import deploy, once, poll


def setup(server, name: str, second: str) -> None:
    deploy(server, name, w.constant_wat(b'{"v":1}'))
    resp = once(server, "PUT", f"/api/v1/functions/{name}?wait=true",
                json={"artifact_base64": w.b64(w.wat(second))})  # fmt: skip
    assert resp.json()["latest_build"]["status"] == "ready", resp.text
    resp = once(server, "POST", f"/api/v1/functions/{name}/aliases",
                json={"name": "prod", "version": 1})  # fmt: skip
    assert resp.status_code == 201


class Traffic:
    """Calls the alias on fresh connections (both workers) until stopped, from `callers`
    threads at once. NOTE: one caller was too little under load: with slow calls a step saw
    fewer than min_invocations in its first interval and was held (rolled back after 10.9 s
    and 11.9 s in loaded full runs; 0.6 s per call does it every time), not a regression."""

    def __init__(self, server, name: str, *more, callers: int = 4) -> None:
        self.servers, self.name = [server, *more], name
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(first,), daemon=True)
                        for first in range(callers)]  # fmt: skip

    def _run(self, calls: int) -> None:
        while not self.stop.is_set():
            server = self.servers[calls % len(self.servers)]
            calls += 1
            with contextlib.suppress(httpx.HTTPError):  # a server may be killed
                once(server, "POST", f"/api/v1/functions/{self.name}:prod/invoke", json={})
            time.sleep(0.02)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def canary(server, name: str) -> dict:
    return once(server, "GET", f"/api/v1/functions/{name}/aliases/prod").json()


def test_a_failing_canary_is_rolled_back_within_one_interval(server, name):
    setup(server, name, w.FAIL_WAT)
    body = {"version": 2, "steps": [50, 100], "interval_sec": 5, "max_error_rate": 0.2,
            "min_invocations": 5}  # fmt: skip
    with Traffic(server, name):
        resp = once(server, "POST", f"/api/v1/functions/{name}/aliases/prod/canary", json=body)
        assert resp.status_code == 201, resp.text
        started = time.monotonic()
        assert resp.json()["routing"] == {"2": 50.0}
        again = once(server, "POST", f"/api/v1/functions/{name}/aliases/prod/canary", json=body)
        assert again.status_code == 409 and again.json()["error"]["code"] == "canary_running"
        done = poll(lambda: canary(server, name)["canary"]["status"] != "progressing"
                    and canary(server, name), timeout=15)  # fmt: skip
        elapsed = time.monotonic() - started
    assert done["canary"]["status"] == "rolled_back", done
    # one interval, plus the scan and a flush
    assert elapsed < 5 + 2.5, (elapsed, done["canary"]["history"])
    assert "error rate" in done["canary"]["reason"]
    assert done["version"] == 1 and done["routing"] == {}
    time.sleep(1.1)
    served = {once(server, "POST", f"/api/v1/functions/{name}:prod/invoke", json={})
              .headers["X-Nimbus-Version"] for _ in range(20)}  # fmt: skip
    assert served == {"1"}
    history = once(server, "GET", f"/api/v1/functions/{name}/history").json()["entries"]
    assert history[0]["action"] == "canary_rolled_back" and history[0]["actor"] == "canary"


def test_a_healthy_canary_reaches_100_percent(server, name):
    setup(server, name, w.constant_wat(b'{"v":2}'))
    body = {"version": 2, "steps": [50, 100], "interval_sec": 5, "max_error_rate": 0.2,
            "min_invocations": 5}  # fmt: skip
    with Traffic(server, name):
        resp = once(server, "POST", f"/api/v1/functions/{name}/aliases/prod/canary", json=body)
        assert resp.status_code == 201, resp.text
        done = poll(lambda: canary(server, name)["canary"]["status"] != "progressing"
                    and canary(server, name), timeout=20)  # fmt: skip
    assert done["canary"]["status"] == "promoted", done
    assert done["version"] == 2 and done["routing"] == {}
    decisions = [e["decision"] for e in done["canary"]["history"]]
    assert decisions[0] == "started" and decisions[-1] == "promoted"
    assert once(server, "DELETE",
                f"/api/v1/functions/{name}/aliases/prod/canary").status_code == 404  # fmt: skip


@pytest.mark.s3
def test_the_other_server_finishes_a_canary_when_its_decider_is_killed(make_server, e2e_seaweedfs):
    """Two `nimbus serve` on one SeaweedFS store; kill -9 the whole server whose worker
    took the last step's decision, mid-way: the other server takes the rest."""
    env = s3_env(e2e_seaweedfs)
    first, second = make_server(env).start(), make_server(env).start()
    name = "canary-killed"
    setup(first, name, w.constant_wat(b'{"v":2}'))
    body = {"version": 2, "steps": [20, 40, 60, 80, 100], "interval_sec": 5,
            "max_error_rate": 0.2, "min_invocations": 3}  # fmt: skip
    with Traffic(first, name, second):
        resp = once(first, "POST", f"/api/v1/functions/{name}/aliases/prod/canary", json=body)
        assert resp.status_code == 201, resp.text

        def decided(server):
            events = canary(server, name)["canary"]["history"]
            done = [e for e in events if e["decision"] == "promoted"]
            return done[-1] if done else None

        step = poll(lambda: decided(second), timeout=15)
        assert step, canary(second, name)
        pid = int(step["decided_by"].rsplit("-", 2)[1])
        decider = first if pid in first.worker_pids() else second
        survivor = second if decider is first else first
        assert pid in decider.worker_pids()
        decider.kill()  # the whole process group: master and both workers
        done = poll(lambda: canary(survivor, name)["canary"]["status"] != "progressing"
                    and canary(survivor, name), timeout=40)  # fmt: skip
    assert done and done["canary"]["status"] == "promoted", done
    assert done["version"] == 2 and done["routing"] == {}
    deciders = {e["decided_by"] for e in done["canary"]["history"][-2:]}
    assert all(str(pid) not in d.split("-") for d in deciders)

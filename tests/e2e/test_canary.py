"""The automatic canary through a real 2-worker server: rolled back by itself, or promoted."""

from __future__ import annotations

import threading
import time

from tests.e2e import wasm as w
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
    """Calls the alias on fresh connections (both workers) until stopped."""

    def __init__(self, server, name: str) -> None:
        self.server, self.name = server, name
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            once(self.server, "POST", f"/api/v1/functions/{self.name}:prod/invoke", json={})
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


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
    assert elapsed < 5 + 2.5, elapsed  # one interval, plus the scan and a flush
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

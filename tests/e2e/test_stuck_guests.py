"""Guests blocked in a host call past their deadline cannot take a worker down for good.

A component sleeping in WASI preview 2 keeps its thread after its caller's 504
(the epoch cannot interrupt a host call), and such a thread only ends with its
process. Once a worker holds half of MAX_STUCK_THREADS of them it drains (calls
in flight finish) and exits; gunicorn starts a fresh one on the same socket, and
every function keeps answering.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.e2e import wasm as w
from tests.sandbox.guests import sleep_forever_component

BUSY_PYTHON = """
import time

def main(event, context):
    end = time.monotonic() + event.get("seconds", 0)
    while time.monotonic() < end:
        pass
    return {"hello": "python"}
"""


def _create(api, body: dict) -> None:
    resp = api.post("/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201 and resp.json()["status"] == "active", resp.text


def _replaced(server, old: int, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = server.worker_pids()
        if pids and old not in pids:
            return pids[0]
        time.sleep(0.1)
    raise AssertionError(f"worker {old} holding stuck guests was not replaced: {pids}")


def test_a_worker_holding_sleeping_components_is_replaced_and_keeps_serving(make_server):
    # At most 4 stuck threads (then components answer 429); replaced at 2.
    server = make_server({"MAX_STUCK_THREADS": "4"}, workers=1).start()
    with server.client(timeout=60) as api:
        sleeper = {"name": "sleeper", "runtime": "wasm", "timeout_sec": 1,
                   "artifact_base64": w.b64(sleep_forever_component())}  # fmt: skip
        _create(api, sleeper)
        _create(api, {"name": "py", "runtime": "python", "code": BUSY_PYTHON})
        echo = w.b64(w.wat(w.ECHO_WAT))
        _create(api, {"name": "echo", "runtime": "wasm", "artifact_base64": echo})
        (first_worker,) = server.worker_pids()

        def invoke(name: str, event: dict | None = None):
            return api.post(f"/api/v1/functions/{name}/invoke", json=event or {})

        assert invoke("sleeper").status_code == 504  # one thread left behind, for good
        # The second one reaches half the bound while a Python call is running:
        # that call is drained (answered), not cut off.
        with ThreadPoolExecutor(2) as pool:
            busy = pool.submit(invoke, "py", {"seconds": 2.0})
            time.sleep(0.2)
            assert pool.submit(invoke, "sleeper").result().status_code == 504
            drained = busy.result()
        assert drained.status_code == 200 and drained.json() == {"hello": "python"}, drained.text
        answered = invoke("py")  # while the old worker drains, or from the new one
        assert answered.status_code == 200, answered.text

        second_worker = _replaced(server, first_worker)
        answered = invoke("py")
        assert answered.status_code == 200 and answered.json() == {"hello": "python"}, answered.text
        echoed = invoke("echo", {"a": 1})
        assert echoed.status_code == 200 and echoed.json() == {"a": 1}, echoed.text
        # The sleeper is served again (504 at its deadline, not 429), and the
        # fresh worker replaces itself in turn when it holds two.
        assert [invoke("sleeper").status_code for _ in range(2)] == [504, 504]
        _replaced(server, second_worker)
        assert invoke("py").status_code == 200

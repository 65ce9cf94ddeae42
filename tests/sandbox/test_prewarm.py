"""Pre-warmed instances: made off the request path, each used for one call, dropped when idle."""

from __future__ import annotations

import json
import threading
import time

import pytest

from sandbox._prewarm import MAX_PENDING_CLOSES, WarmStock
from store import errors

from .conftest import deployment, put_wasm, warm_up_runs_none_of_the_function
from .guests import wat_component
from .test_python_runtime import deploy, ok, runtime  # noqa: F401 - fixtures

COUNTER = """
calls = 0

def main(event):
    global calls
    calls += 1
    return calls
"""


def _wait_for(sandbox, stat: str, value: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sandbox.stats()[stat] == value:
            return True
        time.sleep(0.02)
    return False


def test_prewarmed_instances_are_fresh_for_every_call(runtime, deploy):  # noqa: F811
    sandbox = runtime[0]
    dep = deploy(COUNTER)
    assert ok(sandbox, dep) == 1
    for _ in range(3):
        assert _wait_for(sandbox, "prewarmed_instances", 1)  # refilled in the background
        assert ok(sandbox, dep) == 1  # a pre-warmed instance is as clean as a new one


def test_an_idle_deployment_loses_its_stock(make_sandbox, store):
    sandbox = make_sandbox(prewarm_idle_sec=0.5)
    dep = deployment(*put_wasm(store, wat_component("C_ECHO")), kind="component")
    sandbox.precompile(dep.artifact_key, dep.artifact_sha256)
    assert sandbox.invoke(dep, b"1", {}).output == b"1"
    assert _wait_for(sandbox, "prewarmed_instances", 1)
    assert _wait_for(sandbox, "prewarmed_instances", 0, timeout=5)


def test_prewarming_can_be_switched_off(make_sandbox, store):
    sandbox = make_sandbox(prewarm_per_deployment=0)
    dep = deployment(*put_wasm(store, wat_component("C_ECHO")), kind="component")
    for _ in range(3):
        assert sandbox.invoke(dep, b"1", {}).output == b"1"
    time.sleep(0.2)
    assert sandbox.stats()["prewarmed_instances"] == 0


def _settled(sandbox) -> int:
    """The stock once earlier tests' refills are done."""
    time.sleep(0.5)
    return sandbox.stats()["prewarmed_instances"]


LOADED_AT = """
import time

print("loading")
loaded_at = time.time()

def main(event):
    return {"loaded_at": loaded_at}
"""


def test_a_prewarmed_python_instance_has_the_functions_module_loaded(runtime, deploy):  # noqa: F811
    sandbox = runtime[0]
    dep = deploy(LOADED_AT)
    stocked = _settled(sandbox)  # other tests' deployments
    ok(sandbox, dep)
    assert _wait_for(sandbox, "prewarmed_instances", stocked + 1)
    time.sleep(0.3)
    called_at = time.time()
    result = sandbox.invoke(dep, b"{}", {})
    # The module's top level ran before the call, off the request path; what it
    # printed is in the log of the call that used the instance.
    assert json.loads(result.output)["loaded_at"] < called_at - 0.2
    assert b"loading" in result.logs


def test_the_warm_up_of_run_answers_the_event_and_runs_none_of_the_function(runtime, deploy):  # noqa: F811
    counted = COUNTER.replace("    return", '    print("called")\n    return')
    warm_up_runs_none_of_the_function(runtime[0], deploy('print("loading")\n' + counted))


def test_a_module_that_fails_to_load_is_not_prewarmed_and_its_calls_report_it(runtime, deploy):  # noqa: F811
    sandbox = runtime[0]
    dep = deploy("raise RuntimeError('no config')\n\ndef main(event):\n    return 1\n")
    stocked = _settled(sandbox)
    for _ in range(2):
        result = sandbox.invoke(dep, b"{}", {})
        assert result.error is not None and result.error.type == "RuntimeError"
        assert any("handler.py" in line for line in result.error.stack)
        time.sleep(0.2)
        assert sandbox.stats()["prewarmed_instances"] == stocked


def test_a_module_that_loops_at_load_time_times_out_on_the_call(runtime, deploy):  # noqa: F811
    sandbox = runtime[0]
    dep = deploy("while True:\n    pass\n\ndef main(event):\n    return 1\n", timeout_sec=0.5)
    stocked = _settled(sandbox)
    for _ in range(2):
        with pytest.raises(errors.Timeout):
            sandbox.invoke(dep, b"{}", {})
    time.sleep(0.6)  # the pre-warming thread's own attempt times out too
    assert sandbox.stats()["prewarmed_instances"] == stocked
    assert ok(sandbox, deploy(COUNTER)) == 1  # the worker keeps serving


class _GatedInstance:
    """Stands in for a used instance: its close can be held to stall the closing thread."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.closed = threading.Event()

    def close(self) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        self.closed.set()


def test_used_instances_waiting_to_close_are_bounded():
    # A stalled closing thread must not let used instances pile up: each holds a pool
    # slot, and a backlog once held every slot of a loaded worker (429s, all slots dirty).
    stock = WarmStock(per_deployment=0, limit=0, idle_sec=60, slots=40, slots_taken=lambda: 0)
    gate = threading.Event()
    stalled = _GatedInstance(gate)
    stock.discard(stalled)  # the background thread takes it and blocks in its close
    deadline = time.monotonic() + 5
    while stock._discarded and time.monotonic() < deadline:
        time.sleep(0.01)
    waiting = [_GatedInstance() for _ in range(MAX_PENDING_CLOSES)]
    for inst in waiting:
        stock.discard(inst)
    over = _GatedInstance()
    stock.discard(over)
    assert over.closed.is_set()  # closed by the caller, at once
    assert not any(inst.closed.is_set() for inst in waiting)  # still queued behind the stall
    gate.set()
    assert all(inst.closed.wait(5) for inst in [stalled, *waiting])
    stock.close()

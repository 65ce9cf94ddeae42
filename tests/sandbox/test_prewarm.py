"""Pre-warmed instances: made off the request path, each used for one call, dropped when idle."""

from __future__ import annotations

import time

from .conftest import deployment, put_wasm
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

"""The pooling allocator: slots sized from the settings, a full pool is a clean 429."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from store import errors

from .conftest import deployment, put_wasm
from .guests import two_memories_component, wat_component


def _concurrently(sandbox, deps: list) -> list[tuple[object, float]]:
    """Each call's result (or error) and how long it took, all started at once."""
    barrier = threading.Barrier(len(deps))

    def one(dep):
        barrier.wait()
        started = time.monotonic()
        try:
            return sandbox.invoke(dep, b"{}", {}), time.monotonic() - started
        except errors.NimbusError as exc:
            return exc, time.monotonic() - started

    with ThreadPoolExecutor(len(deps)) as pool:
        return list(pool.map(one, deps))


def test_a_pool_of_two_answers_a_third_concurrent_call_with_429(make_sandbox, store):
    sandbox = make_sandbox(max_concurrent=3, pool_instances=2)
    loop = deployment(*put_wasm(store, wat_component("C_LOOP")), kind="component", timeout_sec=1)
    sandbox.precompile(loop.artifact_key, loop.artifact_sha256)
    outcomes = _concurrently(sandbox, [loop] * 3)
    timed_out = [t for o, t in outcomes if isinstance(o, errors.Timeout)]
    refused = [(o, t) for o, t in outcomes if isinstance(o, errors.LimitExceeded)]
    assert len(timed_out) == 2 and len(refused) == 1, outcomes
    busy, waited = refused[0]
    assert busy.retry_after >= 1 and "slot" in str(busy)
    assert waited < 0.9  # refused at once, not after the others' deadline
    # The worker keeps serving: the slots came back.
    echo = deployment(*put_wasm(store, wat_component("C_ECHO")), kind="component")
    assert sandbox.invoke(echo, b'"again"', {}).output == b'"again"'
    assert sandbox.stats()["running"] == 0


def test_idle_reused_instances_give_their_slots_up_before_a_429(make_sandbox, store):
    sandbox = make_sandbox(pool_instances=1)
    key, sha = put_wasm(store, wat_component("C_ECHO"))
    warm = deployment(key, sha, kind="component", reuse_instance=True)
    other = deployment(key, sha, kind="component")
    assert sandbox.invoke(warm, b"1", {}).output == b"1"
    assert sandbox.stats()["idle_instances"] == 1  # it holds the only slot
    assert sandbox.invoke(other, b"2", {}).output == b"2"
    assert sandbox.stats()["idle_instances"] == 0


def test_memory_over_the_slot_size_is_refused(make_sandbox, store):
    sandbox = make_sandbox(max_memory_mb=64)
    dep = deployment(*put_wasm(store, wat_component("C_ECHO")), kind="component", memory_mb=65)
    with pytest.raises(errors.Invalid, match="memory_mb"):
        sandbox.invoke(dep, b"1", {})


def test_the_on_demand_allocator_still_serves(make_sandbox, store):
    sandbox = make_sandbox(pooling=False, pool_instances=1)
    dep = deployment(*put_wasm(store, wat_component("C_ECHO")), kind="component")
    outcomes = _concurrently(sandbox, [dep] * 2)
    assert [o.output for o, _ in outcomes] == [b"{}", b"{}"]


def test_idle_instances_are_bounded_in_all_oldest_deployment_first(make_sandbox, store):
    sandbox = make_sandbox(max_idle_instances=2)
    key, sha = put_wasm(store, wat_component("C_ECHO"))
    deps = [deployment(key, sha, kind="component", reuse_instance=True) for _ in range(3)]
    for dep in deps:
        sandbox.invoke(dep, b"1", {})
    assert sandbox.stats()["idle_instances"] == 2


def test_a_component_with_two_memories_cannot_hold_twice_memory_mb(make_sandbox, store):
    """memory_mb bounds a guest's whole memory: a store's limit is per linear memory,
    so a component growing two memories would hold twice as much. With the pool it
    is refused at deploy, naming the limit; without, it never runs."""
    key, sha = put_wasm(store, two_memories_component())
    pooled = make_sandbox(max_memory_mb=64)
    with pytest.raises(errors.Invalid, match="2 Wasm linear memories"):
        pooled.precompile(key, sha)

    unpooled = make_sandbox(pooling=False)
    unpooled.precompile(key, sha)
    dep = deployment(key, sha, kind="component", memory_mb=16)
    result = unpooled.invoke(dep, b"{}", {})
    assert result.output == b"" and result.error is not None, result.output  # not 482 pages
    assert "memory count" in result.error.message
    # Components with one memory run as before.
    one = deployment(*put_wasm(store, wat_component("C_ECHO")), kind="component", memory_mb=16)
    assert unpooled.invoke(one, b"1", {}).output == b"1"

"""Components exporting the `handler` world: hand-written WAT ones (fast) and a
Python one built with componentize-py (real WASI preview 2 guest)."""

from __future__ import annotations

import json
import time

import pytest

from sandbox import LOG_LIMIT_BYTES, _lanes
from store import LocalStore, errors

from .conftest import CACHE, deployment, put_wasm
from .guests import log_flood_component, sleep_forever_component, wat_component, wat_module


def _wait_unstuck(sandbox, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while sandbox.stats()["stuck_threads"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox.stats()["stuck_threads"] == 0


# -- hand-written components --------------------------------------------------------


def test_component_returns_its_result(sandbox, deploy):
    dep = deploy(wat_component("C_ECHO"))
    assert dep.kind == "component"
    result = sandbox.invoke(dep, b'{"a":1}', {})
    assert result.error is None
    assert (result.output, result.content_type) == (b'{"a":1}', "application/json")


def test_component_gets_the_context(sandbox, deploy):
    dep = deploy(wat_component("C_CONTEXT"), name="ctx-fn", memory_mb=32, timeout_sec=3)
    before = time.time()
    result = sandbox.invoke(dep, b"{}", {"invocation_id": "inv_9", "user": "ada"})
    context = json.loads(result.output)
    assert context["function_name"] == "ctx-fn"
    assert context["version"] == 1
    assert context["memory_limit_mb"] == 32
    assert context["invocation_id"] == "inv_9"
    assert context["user"] == "ada"
    assert before + 2.99 <= context["deadline_ms"] / 1000 <= time.time() + 3.01


def test_component_error_record_is_a_function_failure(sandbox, deploy):
    result = sandbox.invoke(deploy(wat_component("C_ERROR")), b"{}", {})
    assert result.error is not None
    assert result.error.type == "ValueError"
    assert result.error.message == "bad event"
    assert result.error.stack == ["at handle (guest.wat:1)", "at main (guest.wat:2)"]


def test_component_loop_times_out(sandbox, deploy):
    dep = deploy(wat_component("C_LOOP"), timeout_sec=0.5)
    started = time.monotonic()
    with pytest.raises(errors.Timeout):
        sandbox.invoke(dep, b"{}", {})
    assert 0.45 <= time.monotonic() - started < 2.0
    _wait_unstuck(sandbox, 2)  # the epoch stopped it: nothing left behind
    assert sandbox.invoke(deploy(wat_component("C_ECHO")), b"1", {}).output == b"1"


def test_component_trap_is_a_function_failure(sandbox, deploy):
    result = sandbox.invoke(deploy(wat_component("C_TRAP")), b"{}", {})
    assert result.error is not None
    assert result.error.type == "Unreachable"
    assert result.error.message.startswith("wasm trap:")


def test_component_deep_recursion_is_a_stack_overflow(sandbox, deploy):
    result = sandbox.invoke(deploy(wat_component("C_RECURSION")), b"{}", {})
    assert result.error is not None
    assert result.error.type == "StackOverflow"


@pytest.fixture(params=["native", "python"])
def log_writer(request, monkeypatch):
    """A component's log written by the native helper's C callback, or by Python without
    the helper."""
    if request.param == "python":
        monkeypatch.setattr(_lanes, "_library", [None])
    elif _lanes.log_helpers() is None:
        pytest.fail("the native helper is not built (scripts/native-lanes.sh)")
    return request.param


def test_component_logging_past_the_cap_returns_its_result(sandbox, deploy, log_writer):
    """Writes past the log cap succeed in the guest and are dropped: 1343 of its 1600
    writes of 4 KiB failed (the log was a file sealed at the cap), and a guest that stops
    at its first failed write, or a language that raises, lost its call."""
    result = sandbox.invoke(deploy(log_flood_component()), b"{}", {})
    assert result.error is None
    assert result.output == b"0"  # writes that failed
    dropped = 1600 * 4096 - LOG_LIMIT_BYTES
    note = b"\n[nimbus: log truncated at 1 MB, %d more bytes dropped]\n" % dropped
    assert result.logs == b"e" * LOG_LIMIT_BYTES + note
    assert sandbox.invoke(deploy(wat_component("C_ECHO")), b"{}", {}).output == b"{}"


def test_component_huge_result_is_result_too_large(sandbox, deploy):
    with pytest.raises(errors.NimbusError) as caught:
        sandbox.invoke(deploy(wat_component("C_HUGE"), memory_mb=16), b"{}", {})
    assert caught.value.code == "result_too_large"


def test_kind_mismatch_is_invalid(sandbox, deploy):
    dep = deploy(wat_module("ECHO"), kind="component")
    with pytest.raises(errors.Invalid):
        sandbox.invoke(dep, b"{}", {})


# -- a real Python component (componentize-py, WASI preview 2) ----------------------


@pytest.fixture
def py(python_component, make_sandbox):
    """(sandbox, deploy) for the Python component, loading from the cached store."""
    store_dir, key, sha = python_component
    sandbox = make_sandbox(store=LocalStore(store_dir), cache_dir=CACHE / "worker-cache")

    def deploy(**overrides):
        overrides.setdefault("timeout_sec", 5.0)
        overrides.setdefault("memory_mb", 64)
        return deployment(key, sha, kind="component", name="py-fn", **overrides)

    return sandbox, deploy


def call(sandbox, dep, op: str, **fields):
    return sandbox.invoke(dep, json.dumps({"op": op, **fields}).encode(), {})


def test_python_component_echo_with_logs(py):
    sandbox, deploy = py
    dep = deploy()
    first = call(sandbox, dep, "echo")
    assert first.cold_start
    body = json.loads(first.output)
    assert body["event"] == {"op": "echo"}
    assert body["context"]["function_name"] == "py-fn"
    assert first.logs == b"stdout line for echo\nstderr line for echo\n"
    second = call(sandbox, dep, "echo")
    assert not second.cold_start
    assert json.loads(second.output)["calls"] == 1  # a fresh instance: module state is new


def test_python_component_reuses_its_instance_only_when_asked(py):
    sandbox, deploy = py
    dep = deploy(reuse_instance=True)
    counts = [json.loads(call(sandbox, dep, "echo").output)["calls"] for _ in range(3)]
    assert counts == [1, 2, 3]
    other = deploy(reuse_instance=True)  # another function, same artifact: its own instance
    assert json.loads(call(sandbox, other, "echo").output)["calls"] == 1
    # A failure other than the function's own error record throws the instance away.
    assert call(sandbox, dep, "raise").error is not None
    assert json.loads(call(sandbox, dep, "echo").output)["calls"] == 1


def test_python_component_error_and_exception(py):
    sandbox, deploy = py
    dep = deploy()
    failed = call(sandbox, dep, "fail")
    assert failed.error is not None
    assert (failed.error.type, failed.error.message, failed.error.stack) == (
        "ValueError",
        "bad input",
        ["a", "b"],
    )
    raised = call(sandbox, dep, "raise")
    assert raised.error is not None
    assert raised.error.type == "Unreachable"  # componentize-py traps on an uncaught exception
    assert b"RuntimeError: boom" in raised.logs
    assert call(sandbox, dep, "echo").error is None


def test_python_component_sees_only_its_env_vars(py):
    sandbox, deploy = py
    result = call(sandbox, deploy(env_vars={"API_URL": "https://x"}), "env")
    assert json.loads(result.output) == {"API_URL": "https://x"}


def test_python_component_cannot_read_host_files(py):
    sandbox, deploy = py
    seen = json.loads(call(sandbox, deploy(), "files").output)
    assert all(str(v).startswith("error:") for v in seen.values()), seen


def _sleep_past_the_deadline(sandbox, dep, sec: float) -> dict[str, int]:
    """A call sleeping `sec` past a 1 s deadline times out at the deadline with its
    logs; the sandbox's stats just after."""
    started = time.monotonic()
    with pytest.raises(errors.Timeout) as caught:
        call(sandbox, dep, "sleep", sec=sec)
    assert 0.95 <= time.monotonic() - started < 2.5
    assert caught.value.logs == b"stdout line for sleep\nstderr line for sleep\n"
    return sandbox.stats()


def test_python_component_sleeping_past_the_deadline(py):
    """time.sleep blocks in a WASI host call the epoch cannot interrupt; the caller
    still gets its timeout at the deadline and its slot back."""
    sandbox, deploy = py
    dep = deploy(timeout_sec=1.0)
    stats = _sleep_past_the_deadline(sandbox, dep, 5)
    assert stats["running"] == 0
    assert stats["stuck_threads"] == 1  # still asleep in the host; counted
    assert call(sandbox, dep, "echo").error is None  # the worker keeps serving


def test_a_reused_instance_sleeping_past_the_deadline_is_stuck_then_dropped(py):
    """A warm instance's call is guarded on a native lane (Python thread without the
    helper built): the caller still gets its timeout at the deadline, the call is
    counted stuck until the sleep ends, and the instance is never reused."""
    sandbox, deploy = py
    dep = deploy(timeout_sec=1.0, reuse_instance=True)
    assert call(sandbox, dep, "echo").error is None
    assert sandbox.stats()["idle_instances"] == 1  # the next call takes it
    stats = _sleep_past_the_deadline(sandbox, dep, 2)
    assert (stats["running"], stats["stuck_threads"], stats["idle_instances"]) == (0, 1, 0)
    _wait_unstuck(sandbox, 5)  # back when the sleep ended
    again = call(sandbox, dep, "echo")
    assert again.error is None
    assert again.logs == b"stdout line for echo\nstderr line for echo\n"  # a new instance
    for _ in range(20):  # the lane serves again
        assert call(sandbox, dep, "echo").error is None


def test_stuck_threads_are_bounded(python_component, make_sandbox):
    store_dir, key, sha = python_component
    shared = LocalStore(store_dir)
    sandbox = make_sandbox(store=shared, cache_dir=CACHE / "worker-cache", max_stuck_threads=1)
    module_dep = deployment(*put_wasm(shared, wat_module("ECHO")))
    dep = deployment(key, sha, kind="component", timeout_sec=0.5)
    with pytest.raises(errors.Timeout):
        call(sandbox, dep, "sleep", sec=1.5)
    with pytest.raises(errors.LimitExceeded) as caught:
        call(sandbox, dep, "echo")
    assert caught.value.retry_after >= 1
    assert sandbox.invoke(module_dep, b"1", {}).output == b"1"  # modules need no guarded thread
    _wait_unstuck(sandbox, 5)  # the thread came back when the sleep ended
    assert call(sandbox, dep, "echo").error is None


def test_python_component_loop_times_out(py):
    sandbox, deploy = py
    with pytest.raises(errors.Timeout):
        call(sandbox, deploy(timeout_sec=0.5), "loop")
    _wait_unstuck(sandbox, 2)  # the epoch stopped the loop: its thread is back at once
    assert call(sandbox, deploy(), "echo").error is None


def test_python_component_memory_bomb(py):
    sandbox, deploy = py
    with pytest.raises(errors.NimbusError) as caught:
        call(sandbox, deploy(memory_mb=48), "memory")
    assert caught.value.code == "memory_limit_exceeded"
    assert call(sandbox, deploy(), "echo").error is None


def test_python_component_huge_result(py):
    sandbox, deploy = py
    with pytest.raises(errors.NimbusError) as caught:
        call(sandbox, deploy(), "big")
    assert caught.value.code == "result_too_large"


def test_python_component_log_flood_is_capped(py, log_writer):
    """Every write succeeds (each one past the cap raised OSError in the guest)."""
    sandbox, deploy = py
    result = call(sandbox, deploy(), "log_flood")
    assert json.loads(result.output) == {"ok": True, "failed_writes": 0}
    first = b"stdout line for log_flood\nstderr line for log_flood\n"
    dropped = len(first) + 100 * 65536 - LOG_LIMIT_BYTES
    assert result.logs.startswith(first + b"eee")
    note = b"\n[nimbus: log truncated at 1 MB, %d more bytes dropped]\n" % dropped
    assert result.logs.endswith(b"e" + note)
    assert len(result.logs) <= LOG_LIMIT_BYTES + 100


def test_python_component_text_result(py):
    sandbox, deploy = py
    result = call(sandbox, deploy(), "text")
    assert (result.output, result.content_type) == (b"plain words", "text/plain")


def test_stuck_threads_ask_for_the_process_to_be_replaced(make_sandbox, store):
    """A component sleeping for years never gives its thread back: at half the bound
    the sandbox asks its owner to replace the process (once per crossing); at the
    bound components answer 429, while command modules keep running."""
    sandbox = make_sandbox(max_stuck_threads=4)
    asked: list[int] = []
    sandbox.on_stuck_threads = asked.append
    key, sha = put_wasm(store, sleep_forever_component())
    sandbox.precompile(key, sha)
    sleeper = deployment(key, sha, kind="component", timeout_sec=0.3)
    echo = deployment(*put_wasm(store, wat_component("C_ECHO")), kind="component")
    for stuck in (1, 2):
        with pytest.raises(errors.Timeout):
            sandbox.invoke(sleeper, b"{}", {})
        assert sandbox.stats()["stuck_threads"] == stuck
    assert asked == [2]
    assert sandbox.invoke(echo, b"1", {}).output == b"1"  # below the bound: still served
    for _ in range(2):
        with pytest.raises(errors.Timeout):
            sandbox.invoke(sleeper, b"{}", {})
    assert asked == [2]  # asked once, not on every stuck call
    with pytest.raises(errors.LimitExceeded):
        sandbox.invoke(echo, b"1", {})
    module = deployment(*put_wasm(store, wat_module("ECHO")))
    assert sandbox.invoke(module, b"1", {}).output == b"1"

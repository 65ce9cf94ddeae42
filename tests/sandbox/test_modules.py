"""Program form (WASI command modules): the contract and the hostile guests.

Every hostile test ends with a normal invoke on the same Sandbox: a guest's
failure never costs the worker its ability to serve.
"""

from __future__ import annotations

import json
import time

import pytest

from sandbox import LOG_LIMIT_BYTES, Sandbox, _lanes
from store import errors

from .guests import wat_module

EVENT = b'{"user":"ada","items":[1,2,3]}'


@pytest.fixture(autouse=True, params=["native", "python"])
def host_functions(request, monkeypatch):
    """Every test on both ways a module runs: the native helper's (instantiate and
    `_start` in one C call, fd_write in C) and the Python one without the helper."""
    if request.param == "python":
        monkeypatch.setattr(_lanes, "_library", [None])
    elif _lanes.module_helpers() is None:
        pytest.skip("the native helper is not built (scripts/install.sh)")
    return request.param


def test_modules_run_through_the_native_helper_when_it_is_built(sandbox, host_functions):
    sandbox.start()
    assert (sandbox._worker().host.native is not None) == (host_functions == "native")


@pytest.fixture
def still_serves(sandbox: Sandbox, deploy):
    def check() -> None:
        dep = deploy(wat_module("ECHO"), name="echo")
        result = sandbox.invoke(dep, EVENT, {})
        assert result.error is None
        assert result.output == EVENT

    return check


# -- the contract ---------------------------------------------------------------


def test_echo_event_on_stdin_result_on_stdout(sandbox, deploy):
    dep = deploy(wat_module("ECHO"))
    result = sandbox.invoke(dep, EVENT, {"invocation_id": "inv_1"})
    assert result.error is None
    assert result.output == EVENT
    assert result.content_type == "application/json"
    assert result.logs == b"hello from the guest\n"
    assert result.duration_ms > 0


def test_large_event_is_read_in_pieces(sandbox, deploy):
    event = json.dumps({"blob": "z" * 50_000}).encode()
    result = sandbox.invoke(deploy(wat_module("ECHO")), event, {})
    assert result.output == event


def test_output_that_is_not_json_is_text(sandbox, deploy):
    result = sandbox.invoke(deploy(wat_module("TEXT")), b"{}", {})
    assert (result.output, result.content_type) == (b"hello, world", "text/plain")


def test_nonzero_exit_is_a_function_failure_with_the_code(sandbox, deploy, still_serves):
    result = sandbox.invoke(deploy(wat_module("EXIT_3")), b"{}", {})
    assert result.error is not None
    assert result.error.type == "ExitError"
    assert result.error.exit_code == 3
    assert "3" in result.error.message
    assert result.logs == b"about to fail\n"
    still_serves()


def test_exit_zero_is_success(sandbox, deploy):
    result = sandbox.invoke(deploy(wat_module("EXIT_0")), b"{}", {})
    assert result.error is None
    assert result.output == b"{}"


def test_argv0_is_the_function_name(sandbox, deploy):
    result = sandbox.invoke(deploy(wat_module("ARGS"), name="my-func"), b"{}", {})
    assert result.output == b"my-func\0"


def _environ(output: bytes) -> tuple[list[bytes], dict]:
    """The guest's variables but the context, and the context (NIMBUS_CONTEXT)."""
    pairs = [p for p in output.split(b"\0") if p]
    contexts = [p for p in pairs if p.startswith(b"NIMBUS_CONTEXT=")]
    assert len(contexts) == 1, pairs
    return [p for p in pairs if p not in contexts], json.loads(contexts[0].split(b"=", 1)[1])


def test_environment_is_only_the_functions_env_vars(sandbox, deploy):
    env = {"GREETING": "hi there", "EMPTY": ""}
    result = sandbox.invoke(deploy(wat_module("ENVIRON"), env_vars=env), b"{}", {})
    pairs, _ = _environ(result.output)
    assert sorted(pairs) == sorted(f"{k}={v}".encode() for k, v in env.items())


def test_no_host_environment_without_env_vars(sandbox, deploy):
    result = sandbox.invoke(deploy(wat_module("ENVIRON")), b"{}", {})
    assert _environ(result.output)[0] == []


def test_context_is_in_NIMBUS_CONTEXT(sandbox, deploy):
    # The one reserved variable: it wins over a function env var of the same name.
    dep = deploy(wat_module("ENVIRON"), name="ctx-fn", env_vars={"NIMBUS_CONTEXT": "mine"})
    before = time.time() * 1000
    result = sandbox.invoke(dep, b"{}", {"invocation_id": "inv_1", "tenant": "acme"})
    pairs, context = _environ(result.output)
    assert pairs == []
    assert context["function_name"] == "ctx-fn"
    assert context["invocation_id"] == "inv_1" and context["tenant"] == "acme"
    assert context["memory_limit_mb"] == dep.memory_mb and context["version"] == dep.version
    assert before + dep.timeout_sec * 1000 - 1000 <= context["deadline_ms"]


def test_fresh_instance_every_call(sandbox, deploy):
    dep = deploy(wat_module("ECHO"))
    outputs = {sandbox.invoke(dep, f'{{"n":{i}}}'.encode(), {}).output for i in range(5)}
    assert len(outputs) == 5


def test_a_module_without_start_is_rejected_at_precompile(sandbox, store):
    from .conftest import put_wasm

    key, sha = put_wasm(store, wat_module("NO_START"))
    with pytest.raises(errors.Invalid, match="_start"):
        sandbox.precompile(key, sha)


def test_short_sleep_returns_normally(sandbox, deploy):
    started = time.monotonic()
    result = sandbox.invoke(deploy(wat_module("NAP")), b'"zzz"', {})
    assert result.output == b'"zzz"'
    assert time.monotonic() - started >= 0.3


def test_absolute_sleep_uses_the_guests_own_clock(sandbox, deploy):
    result = sandbox.invoke(deploy(wat_module("SLEEP_UNTIL")), b"{}", {})
    errno, events, waited = result.output.split()
    assert (int(errno), int(events), int(waited)) == (0, 1, 1)


# -- hostile guests ---------------------------------------------------------------


def test_infinite_loop_times_out(sandbox, deploy, still_serves):
    dep = deploy(wat_module("LOOP"), timeout_sec=0.5)
    started = time.monotonic()
    with pytest.raises(errors.Timeout) as caught:
        sandbox.invoke(dep, b"{}", {})
    elapsed = time.monotonic() - started
    assert caught.value.code == "timeout"
    assert 0.45 <= elapsed < 2.0
    still_serves()


def test_sleeping_far_past_the_deadline_times_out_at_the_deadline(sandbox, deploy, still_serves):
    dep = deploy(wat_module("SLEEP_LONG"), timeout_sec=0.5)
    started = time.monotonic()
    with pytest.raises(errors.Timeout):
        sandbox.invoke(dep, b"{}", {})
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.5  # the guest asked for 60 s
    assert sandbox.stats()["running"] == 0  # its slot is free again
    still_serves()


def test_memory_bomb_is_memory_limit_exceeded(sandbox, deploy, still_serves):
    dep = deploy(wat_module("MEMORY_BOMB"), memory_mb=16)
    with pytest.raises(errors.NimbusError) as caught:
        sandbox.invoke(dep, b"{}", {})
    assert caught.value.code == "memory_limit_exceeded"
    still_serves()


def test_memory_bomb_that_exits_is_memory_limit_exceeded(sandbox, deploy, still_serves):
    dep = deploy(wat_module("MEMORY_BOMB_EXIT"), memory_mb=16)
    with pytest.raises(errors.NimbusError) as caught:
        sandbox.invoke(dep, b"{}", {})
    assert caught.value.code == "memory_limit_exceeded"
    still_serves()


def test_module_larger_than_its_memory_limit_is_memory_limit_exceeded(sandbox, deploy):
    dep = deploy(wat_module("HUGE_RESULT"), memory_mb=4)  # needs 120 pages = 7.5 MiB
    with pytest.raises(errors.NimbusError) as caught:
        sandbox.invoke(dep, b"{}", {})
    assert caught.value.code == "memory_limit_exceeded"


def test_deep_recursion_is_a_stack_overflow_failure(sandbox, deploy, still_serves):
    result = sandbox.invoke(deploy(wat_module("RECURSION")), b"{}", {})
    assert result.error is not None
    assert result.error.type == "StackOverflow"
    assert result.error.stack  # wasm frames
    still_serves()


def test_trap_is_a_function_failure(sandbox, deploy, still_serves):
    result = sandbox.invoke(deploy(wat_module("TRAP")), b"{}", {})
    assert result.error is not None
    assert result.error.type == "Unreachable"
    assert "unreachable" in result.error.message
    assert result.error.exit_code is None
    still_serves()


def test_stdout_flood_is_result_too_large(sandbox, deploy, still_serves):
    dep = deploy(wat_module("STDOUT_FLOOD"), timeout_sec=10)
    started = time.monotonic()
    with pytest.raises(errors.NimbusError) as caught:
        sandbox.invoke(dep, b"{}", {})
    assert caught.value.code == "result_too_large"
    assert time.monotonic() - started < 5  # stopped at the cap, not at the deadline
    still_serves()


def test_huge_single_write_is_result_too_large(sandbox, deploy, still_serves):
    with pytest.raises(errors.NimbusError) as caught:
        sandbox.invoke(deploy(wat_module("HUGE_RESULT")), b"{}", {})
    assert caught.value.code == "result_too_large"
    still_serves()


def test_stderr_flood_is_capped_while_written(sandbox, deploy, still_serves):
    result = sandbox.invoke(deploy(wat_module("STDERR_FLOOD")), b"{}", {})
    assert result.error is None
    assert result.output == b'{"ok":true}'
    body, _, note = result.logs.rpartition(b"\n[nimbus: log truncated")
    assert len(body) == LOG_LIMIT_BYTES
    assert set(body) == {ord("e")}
    assert b"dropped" in note
    assert len(result.logs) < LOG_LIMIT_BYTES + 200
    still_serves()


def test_a_write_nwritten_cannot_count_is_a_short_write(sandbox, deploy, still_serves):
    """4 GiB in one fd_write (512 iovecs over the same 8 MiB): the write stops before
    the iovec that would overflow its u32 count, and says how much it took."""
    result = sandbox.invoke(deploy(wat_module("HUGE_WRITEV"), memory_mb=16), b"{}", {})
    assert result.error is None
    assert result.output == b"000 511 "
    assert b"[nimbus: log truncated" in result.logs
    still_serves()


def test_host_files_are_not_reachable(sandbox, deploy, still_serves):
    result = sandbox.invoke(deploy(wat_module("FILES")), b"{}", {})
    codes = [int(c) for c in result.output.split()]
    assert len(codes) == 4
    assert all(c != 0 for c in codes)  # EBADF / ENOTDIR / ...: nothing opened
    still_serves()


def test_pointers_outside_guest_memory_are_efault(sandbox, deploy, still_serves):
    result = sandbox.invoke(deploy(wat_module("BAD_POINTERS")), b"{}", {})
    assert result.error is None
    writes, iovecs, read, poll, bad_fd = (int(c) for c in result.output.split())
    assert (writes, iovecs, poll, bad_fd) == (21, 21, 21, 8)  # EFAULT from our host calls
    assert read != 0  # stdin is wasmtime's own: an errno of its choosing, never a crash
    still_serves()


def test_changed_env_vars_are_never_served_stale(sandbox, deploy):
    first = deploy(wat_module("ENVIRON"), env_vars={"A": "1"})
    second = first.__class__(**{**first.__dict__, "env_vars": {"A": "2"}})
    assert _environ(sandbox.invoke(first, b"{}", {}).output)[0] == [b"A=1"]
    assert _environ(sandbox.invoke(second, b"{}", {}).output)[0] == [b"A=2"]


def test_handler_glue_result_channel_keeps_prints_out_of_the_result(sandbox, deploy):
    """Glue that declares fd 3 as its result: the handler's stdout goes to the log,
    in order with stderr, and the result is exactly what was written to fd 3."""
    result = sandbox.invoke(deploy(wat_module("RESULT_CHANNEL")), b"{}", {})
    assert result.error is None
    assert result.output == b'{"ok":true}'
    # $num printed the errno of the fd 1 write (0) after it: still log, not result.
    assert result.logs == b"printed by the handler\n000 on stderr\n"


def test_a_program_cannot_write_to_fd3(sandbox, deploy):
    result = sandbox.invoke(deploy(wat_module("UNDECLARED_FD3")), b"{}", {})
    assert result.output == b"008 "  # EBADF; stdout is the result as ever


def test_a_poll_with_millions_of_subscriptions_is_refused_at_once(sandbox, deploy, still_serves):
    """NOTE(security): a guest must not make the host loop over 2 M subscriptions with the
    GIL held (before the cap: a host loop past the 5 s deadline, every other thread stalled)."""
    result = sandbox.invoke(deploy(wat_module("POLL_FLOOD"), memory_mb=256), b"{}", {})
    assert [int(n) for n in result.output.split()] == [28, 0]  # EINVAL, then a sleep works
    still_serves()

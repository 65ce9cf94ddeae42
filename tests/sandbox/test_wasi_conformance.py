"""WASI preview 1 as a `wasm` guest sees it: what raw wasmtime shows the same program
(the reference: it passes the applicable wasi-testsuite cases), plus DESIGN.md's
conventions — the environment is exactly the function's env_vars, argv is its
name, stdin is the event, stdout the result, stderr the log, an exit code a
function error.

Guests are uploaded modules (`context_env=False`, as the gateway makes them for
runtime `wasm`); glue the platform built still gets NIMBUS_CONTEXT (test_modules.py).
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
import wasmtime

from .conftest import deployment, put_wasm
from .wasi_guests import wasi_guest

ENV = {"GREETING": "hi there", "QUOTED": 'say "hi"\nand a second line', "EQ": "a=b", "PI": "π"}


def raw_wasmtime(tmp_path: Path, guest: str, argv: list[str], env: dict, stdin: bytes):
    """(stdout, stderr, exit code or the error text) of `guest` on plain wasmtime WASI."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    files = {name: tmp_path / f"raw-{guest}-{name}" for name in ("in", "out", "err")}
    files["in"].write_bytes(stdin)
    config = wasmtime.WasiConfig()
    config.argv, config.env = argv, list(env.items())
    config.stdin_file, config.stdout_file, config.stderr_file = (
        str(files["in"]), str(files["out"]), str(files["err"]),
    )  # fmt: skip
    store.set_wasi(config)
    instance = linker.instantiate(store, wasmtime.Module(engine, wasi_guest(guest)))
    try:
        instance.exports(store)["_start"](store)
        code: int | str = 0
    except wasmtime.ExitTrap as exc:
        code = exc.code
    except wasmtime.WasmtimeError as exc:
        code = str(exc)
    return files["out"].read_bytes(), files["err"].read_bytes(), code


@pytest.fixture
def run(sandbox, store, tmp_path):
    """Run a guest as an uploaded `wasm` function named "conformer"; with `compare`,
    also on raw wasmtime, and check stdout and stderr are byte for byte the same."""

    def run_(guest: str, event: bytes = b"{}", env: dict | None = None, compare: bool = True):
        key, sha = put_wasm(store, wasi_guest(guest))
        sandbox.precompile(key, sha)
        dep = deployment(key, sha, name="conformer", env_vars=env or {}, context_env=False)
        result = sandbox.invoke(dep, event, {"invocation_id": "inv_1"})
        if compare:
            out, err, _ = raw_wasmtime(tmp_path, guest, ["conformer"], env or {}, event)
            assert (result.output, result.logs) == (out, err)
        return result

    return run_


def _report(output: bytes) -> tuple[list[int], list[bytes]]:
    """ENVIRON_REPORT / ARGS_REPORT: four numbers, then the NUL-terminated strings."""
    numbers = [int(n) for n in output[:16].split()]
    strings = output[16:].split(b"\0")
    assert strings[-1] == b""
    return numbers, strings[:-1]


def test_no_env_vars_means_no_variables_at_all(run):
    numbers, strings = _report(run("ENVIRON_REPORT").output)
    assert numbers == [0, 0, 0, 0] and strings == []  # errno, count, size, errno


def test_the_environment_is_exactly_the_env_vars_quotes_and_newlines_included(run):
    numbers, strings = _report(run("ENVIRON_REPORT", env=ENV).output)
    expected = [f"{name}={value}".encode() for name, value in ENV.items()]
    assert strings == expected
    assert numbers == [0, len(ENV), sum(len(pair) + 1 for pair in expected), 0]


def test_a_module_may_ask_for_the_context_by_exporting_nimbus_context_env(run):
    numbers, strings = _report(run("ENVIRON_ASKING", env={"A": "1"}, compare=False).output)
    assert numbers[1] == 2 and strings[0] == b"A=1"
    name, _, value = strings[1].partition(b"=")
    assert name == b"NIMBUS_CONTEXT"
    context = json.loads(value)
    assert (context["function_name"], context["invocation_id"]) == ("conformer", "inv_1")


def test_argv_is_the_function_name_alone(run):
    numbers, strings = _report(run("ARGS_REPORT").output)
    assert strings == [b"conformer"]
    assert numbers == [0, 1, len(b"conformer") + 1, 0]


def test_clocks(run, tmp_path):
    before = time.time_ns()
    output = run("CLOCKS", compare=False).output
    errnos = [int(n) for n in output[:24].split()]
    realtime, mono1, mono2, res_real, res_mono, _cpu = struct.unpack("<6Q", output[24:])
    # realtime, monotonic twice, both resolutions: fine; process CPU time: EBADF (8)
    assert errnos == [0, 0, 0, 0, 0, 8]
    raw_output, _, _ = raw_wasmtime(tmp_path, "CLOCKS", ["conformer"], {}, b"")
    assert raw_output[:24] == output[:24]  # the same errnos as wasmtime's own
    assert before - 1e9 <= realtime <= time.time_ns() + 1e9
    assert mono2 - mono1 >= 20_000_000  # the 20 ms sleep between them
    assert 0 < res_real <= 1_000_000 and 0 < res_mono <= 1_000_000


def test_random_fills_each_buffer_differently(run):
    first = run("RANDOM", compare=False).output
    second = run("RANDOM", compare=False).output
    assert first[:8] == b"000 000 "
    buffers = [first[8:40], first[40:72], second[8:40]]
    assert len(set(buffers)) == 3 and all(len(set(b)) > 8 for b in buffers)


@pytest.mark.parametrize("code", [0, 1, 3, 125])
def test_proc_exit_codes(run, code):
    result = run("EXIT_WITH", event=str(code).encode())
    assert result.output == b'{"bye":1}'  # what it wrote before exiting is kept
    if code == 0:
        assert result.error is None
    else:
        assert result.error is not None
        assert (result.error.type, result.error.exit_code) == ("ExitError", code)
        assert result.error.message == f"function exited with status {code}"


def test_an_exit_status_wasmtime_refuses_is_a_function_error_saying_so(run, tmp_path):
    result = run("EXIT_WITH", event=b"126")
    assert result.error is not None and result.error.exit_code is None
    _, _, raw_error = raw_wasmtime(tmp_path, "EXIT_WITH", ["c"], {}, b"126")
    assert result.error.message == "exit with invalid exit status outside of [0..126)"
    assert result.error.message in raw_error


def test_fd_write_stdout_is_the_result_stderr_the_log(run):
    result = run("WRITES", compare=False)
    output, numbers = result.output[:-12], [int(n) for n in result.output[-12:].split()]
    written, stderr_errno, bad_fd_errno = numbers
    assert output == b"abcde"[:written] and written >= 2  # a gathered write may be short
    assert (stderr_errno, bad_fd_errno) == (0, 8)  # fd 5 does not exist: EBADF
    assert result.logs == b"to the log\n"


def test_fd_read_on_stdin_is_the_event_then_eof(run):
    event = b'{"text": "scattered into 3- and 2-byte reads"}'
    result = run("READS", event=event)
    assert result.output == event + b"|000 000 "  # past EOF: success, 0 bytes

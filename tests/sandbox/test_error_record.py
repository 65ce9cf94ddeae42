"""A command's own error record: a last stderr line of RS + JSON {type, message, stack}.

The record follows a line break of its own, which is not part of the log.

The handler glue of compiled languages reports a handler's error this way
(compiler/glue/); the sandbox turns it into the function error's type,
message and stack, and keeps the log before it.
"""

from __future__ import annotations

import json

from sandbox._outcome import reported_failure

from .guests import module

RECORD = {"type": "ValueError", "message": 'bad "input"', "stack": ["at handler (handler.c:3)"]}


def _failing(stderr: bytes, code: int = 1) -> bytes:
    escaped = "".join(f"\\{b:02x}" for b in stderr)
    return module(
        f"""
  (data (i32.const 256) "{escaped}")
  (func (export "_start")
    (drop (call $write (i32.const 2) (i32.const 256) (i32.const {len(stderr)})))
    (call $proc_exit (i32.const {code})))
"""
    )


def test_record_becomes_the_function_error(sandbox, deploy):
    stderr = b"starting\n" + b"\n\x1e" + json.dumps(RECORD).encode() + b"\n"
    result = sandbox.invoke(deploy(_failing(stderr)), b"{}", {})
    assert result.error is not None
    assert (result.error.type, result.error.message) == ("ValueError", 'bad "input"')
    assert result.error.stack == ["at handler (handler.c:3)"]
    assert result.error.exit_code is None
    assert result.logs == b"starting\n"


def test_without_a_record_a_nonzero_exit_names_its_code(sandbox, deploy):
    result = sandbox.invoke(deploy(_failing(b"just a log line\n", code=3)), b"{}", {})
    assert result.error.type == "ExitError" and result.error.exit_code == 3
    assert result.logs == b"just a log line\n"


def test_malformed_records_are_ignored():
    assert reported_failure(b"no record") is None
    assert reported_failure(b"\x1enot json") is None
    assert reported_failure(b'\x1e["a list"]') is None
    assert reported_failure(b'\x1e{"type": 1, "message": "m"}') is None
    failure, logs = reported_failure(b'log\n\x1e{"type": "E", "message": "m"}')
    assert (failure.type, failure.message, failure.stack, logs) == ("E", "m", [], b"log")


def test_record_fields_are_bounded():
    record = {"type": "E", "message": "m" * 100_000, "stack": ["f" * 5000] * 100}
    failure, _ = reported_failure(b"\x1e" + json.dumps(record).encode())
    assert failure.message == "m" * 64 * 1024 + f" …[{100_000 - 64 * 1024} more characters]"
    assert len(failure.stack) == 32 and len(failure.stack[0]) == 1000

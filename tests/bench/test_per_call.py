"""The cold-start references: the same example as a process per call computes what the
function computes, and a reference that disagrees stops the comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.comparisons import _per_call

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def context(name: str) -> dict:
    return {"function_name": name, "version": 1, "invocation_id": "inv_test",
            "deadline_ms": 0, "memory_limit_mb": 128}  # fmt: skip


def test_python_reference_runs_the_example_handler_in_python3(tmp_path: Path) -> None:
    files = {p.name: p.read_text() for p in (EXAMPLES / "python" / "wordstats").glob("*.py")}
    reference = _per_call.build("python", files, "handler.main", tmp_path)
    event = json.dumps({"text": "the cat and the hat and the bat"}).encode()
    took, out = reference.process(event, context("wordstats"))
    assert took > 0
    assert _per_call.result_json(out) == {
        "words": 8,
        "top": [["the", 3], ["and", 2], ["cat", 1]],
        "mean_length": 3,
        "function": "wordstats",
    }
    assert reference.argv[0] == _per_call.SYSTEM_PYTHON


def test_c_reference_is_the_native_binary_with_the_builders_glue(tmp_path: Path) -> None:
    files = {"handler.c": (EXAMPLES / "c" / "hello.c").read_text()}
    reference = _per_call.build("c", files, None, tmp_path)
    _, out = reference.process(b'{"name": "Ada"}', context("c-hello"))
    assert _per_call.result_json(out) == {"message": "Hello, Ada!", "function": "c-hello"}
    assert reference.built_ms > 0
    assert (tmp_path / "handler-native").read_bytes()[:4] == b"\x7fELF"


def test_a_reference_with_another_result_is_refused() -> None:
    fresh = [{"output": '{"message": "Hello, Ada!"}'}]
    runs = [
        (1.5, b'{"message": "Hello, Ada!"}\n'),
        (1.2, b'log line\n{"message": "Hello, Ada!"}\n'),
    ]
    _per_call.keep_times("hello", fresh, runs)
    assert runs == [1.5, 1.2]  # a log line before the result is fine: the last line counts

    with pytest.raises(RuntimeError, match="hello: Nimbus"):
        _per_call.keep_times("hello", fresh, [(1.0, b'{"message": "Hello, Bob!"}\n')])

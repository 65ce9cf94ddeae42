"""The `wasm` builder: validates uploads with wasmtime and explains what is wrong."""

from __future__ import annotations

import pytest

import compiler
from compiler import BuildFailed, BuildLog, BuildRequest
from tests.e2e.wasm import hello_module


def build(tmp_path, data: bytes):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(data)
    request = BuildRequest("fn_x", 1, "wasm", None, None, None, binary=upload)
    log = BuildLog(tmp_path / "build.log")
    try:
        return compiler.builder_for("wasm").build(request, tmp_path, log), log.text()
    finally:
        log.close()


def test_valid_module_is_kept_as_is(tmp_path):
    result, log = build(tmp_path, hello_module())
    assert result.kind == "module"
    assert result.artifact.read_bytes() == hello_module()
    assert "validated" in log


@pytest.mark.parametrize(
    "data, message",
    [
        (b"hello", "not a WebAssembly binary"),
        (b"\0asm\x01\0\0\0\x01\xff", "invalid WebAssembly module"),
        (b"\0asm\x0d\0\x01\0\xff", "invalid WebAssembly component"),
    ],
)
def test_bad_uploads_fail_with_a_reason(tmp_path, data, message):
    with pytest.raises(BuildFailed, match=message):
        build(tmp_path, data)


def test_runtime_without_builder_says_so():
    with pytest.raises(BuildFailed, match="no builder"):
        compiler.builder_for("cobol")

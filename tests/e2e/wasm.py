"""Small WebAssembly test programs, assembled from WAT with wasmtime."""

from __future__ import annotations

import base64

import wasmtime

# A WASI command that writes a fixed JSON document to stdout.
HELLO_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"hello\":\"world\"}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 17))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


def hello_module() -> bytes:
    return bytes(wasmtime.wat2wasm(HELLO_WAT))


def module_with(functions: int) -> bytes:
    """A valid command module with many functions: slow enough to compile to watch a build."""
    body = "\n".join(
        f"(func $f{i} (param i32) (result i32) "
        + "(local.get 0) " + "(i32.add (i32.const 7)) (i32.mul (i32.const 3)) " * 20
        + ")"
        for i in range(functions)
    )  # fmt: skip
    return bytes(wasmtime.wat2wasm(f'(module {body} (func (export "_start")))'))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

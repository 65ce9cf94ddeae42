"""The benchmark's guest: a tiny WASI command that copies stdin to stdout."""

from __future__ import annotations

import base64
import functools

import wasmtime

# NOTE: program form (DESIGN.md): the event arrives on stdin, the result is
# what the program writes to stdout. Echoing makes the invoke an exact twin
# of the baseline's JSON echo. The iovec for fd_read/fd_write sits at 0/16,
# the byte counts at 8/24 and the data buffer at 1024..128 KiB.
ECHO_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (local $n i32)
    (block $done
      (loop $read
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 130048))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store (i32.const 16) (i32.const 1024))
        (i32.store (i32.const 20) (local.get $n))
        (loop $write
          (br_if $done (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
          (br_if $done (i32.eqz (i32.load (i32.const 24))))
          (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.load (i32.const 24))))
          (i32.store (i32.const 20) (i32.sub (i32.load (i32.const 20)) (i32.load (i32.const 24))))
          (br_if $write (i32.load (i32.const 20))))
        (br $read)))))
"""

# The event every comparison sends: small, realistic, the same on both sides.
EVENT = b'{"user":"ada","action":"checkout","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}]}'


@functools.cache
def echo_module() -> bytes:
    return bytes(wasmtime.wat2wasm(ECHO_WAT))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

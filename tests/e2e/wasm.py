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
    return bytes(
        wasmtime.wat2wasm(f'(module (memory (export "memory") 1) {body} (func (export "_start")))')
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def deploy_echo(server, name: str = "echo") -> None:
    """Create the stdin → stdout echo command (ECHO_WAT, below) as `name` and wait for it."""
    body = {"name": name, "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))}
    with server.client() as api:
        assert api.post("/api/v1/functions?wait=true", json=body).status_code == 201


_WASI = """
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
"""

# stdin → stdout, 64 KiB at a time: the event comes back as the result.
ECHO_WAT = f"""(module {_WASI}
  (func (export "_start") (local $n i32)
    (loop $more
      (i32.store (i32.const 0) (i32.const 1024))
      (i32.store (i32.const 4) (i32.const 65536))
      (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $n (i32.load (i32.const 8)))
      (if (i32.gt_u (local.get $n) (i32.const 0))
        (then
          (i32.store (i32.const 4) (local.get $n))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
          (br $more)))))
)"""

# stdin → stdout and stderr: the event is the result and also logged
ECHO_AND_LOG_WAT = ECHO_WAT.replace(
    "(br $more)",
    "(drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))\n"
    "          (br $more)",
)

# writes a line to stderr and exits 3
FAIL_WAT = f"""(module {_WASI}
  (data (i32.const 100) "something broke\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 3)))
)"""

SPIN_WAT = f"""(module {_WASI}
  (func (export "_start") (loop $forever (br $forever))))"""


def sleep_wat(seconds: float, output: bytes = b'{"slept": true}') -> str:
    """Sleeps in one host call (poll_oneoff on a relative clock), then prints `output`."""
    data = "".join(f"\\{b:02x}" for b in output)
    return f"""(module {_WASI}
  (data (i32.const 1024) "{data}")
  (func (export "_start")
    (i64.store (i32.const 0) (i64.const 1))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const {int(seconds * 1e9)}))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const {len(output)}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


# sleeps 20 s in one host call (poll_oneoff on a relative clock)
SLEEP_WAT = f"""(module {_WASI}
  (func (export "_start")
    (i64.store (i32.const 0) (i64.const 1))          ;; userdata
    (i32.store8 (i32.const 8) (i32.const 0))         ;; tag: clock
    (i32.store (i32.const 16) (i32.const 1))         ;; clock id: monotonic
    (i64.store (i32.const 24) (i64.const 20000000000)) ;; 20 s in ns
    (i64.store (i32.const 32) (i64.const 0))         ;; precision
    (i32.store16 (i32.const 40) (i32.const 0))       ;; flags: relative
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"""

# grows memory until refused, then touches the last page: a hog
MEMORY_BOMB_WAT = f"""(module {_WASI}
  (func (export "_start")
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))"""

# 8 MiB of '[' to stdout: over the 6 MB result cap
FLOOD_WAT = f"""(module {_WASI}
  (func (export "_start") (local $i i32)
    (memory.fill (i32.const 1024) (i32.const 91) (i32.const 65536))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $more
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 128))))))"""

TEXT_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "plain words")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 11))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


def wat(source: str) -> bytes:
    return bytes(wasmtime.wat2wasm(source))


def constant_wat(output: bytes) -> str:
    """A command that prints `output` and exits."""
    data = "".join(f"\\{b:02x}" for b in output)
    return f"""(module {_WASI}
  (data (i32.const 1024) "{data}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const {len(output)}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""

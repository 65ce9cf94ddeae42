"""Test guests in WAT: WASI command modules (program form) and handler components.

Memory layout of the modules: 0..63 scratch (iovecs, counts), 128..255 a
poll subscription and its event, 256..1023 constant strings, 4096.. buffers.
"""

from __future__ import annotations

import functools

import wasmtime

_PRELUDE = r"""
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get"
    (func $clock_res_get (param i32 i32) (result i32)))

  ;; write(fd, ptr, len) -> errno
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))

  ;; print a number 0..999 and a space on stdout
  (func $num (param $n i32)
    (i32.store8 (i32.const 32) (i32.add (i32.const 48) (i32.div_u (local.get $n) (i32.const 100))))
    (i32.store8 (i32.const 33)
      (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $n) (i32.const 10)) (i32.const 10))))
    (i32.store8 (i32.const 34) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
    (i32.store8 (i32.const 35) (i32.const 32))
    (drop (call $write (i32.const 1) (i32.const 32) (i32.const 4))))

  ;; sleep: one clock subscription (monotonic, relative) of $ns nanoseconds
  (func $sleep (param $ns i64) (result i32)
    (i64.store (i32.const 128) (i64.const 7))
    (i32.store8 (i32.const 136) (i32.const 0))
    (i32.store (i32.const 144) (i32.const 1))
    (i64.store (i32.const 152) (local.get $ns))
    (i64.store (i32.const 160) (i64.const 0))
    (i32.store16 (i32.const 168) (i32.const 0))
    (call $poll_oneoff (i32.const 128) (i32.const 192) (i32.const 1) (i32.const 240)))
"""


def module(body: str, pages: int = 2) -> bytes:
    wat = f'(module {_PRELUDE}\n  (memory (export "memory") {pages})\n{body}\n)'
    return bytes(wasmtime.wat2wasm(wat))


# stdin → stdout, and a line on stderr.
ECHO = r"""
  (data (i32.const 256) "hello from the guest\n")
  (func (export "_start")
    (local $n i32) (local $total i32)
    (drop (call $write (i32.const 2) (i32.const 256) (i32.const 21)))
    (block $eof
      (loop $more
        (i32.store (i32.const 16) (i32.add (i32.const 4096) (local.get $total)))
        (i32.store (i32.const 20) (i32.const 4096))
        (br_if $eof (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
        (local.set $n (i32.load (i32.const 24)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $total (i32.add (local.get $total) (local.get $n)))
        (br $more)))
    (drop (call $write (i32.const 1) (i32.const 4096) (local.get $total))))
"""

TEXT = r"""
  (data (i32.const 256) "hello, world")
  (func (export "_start") (drop (call $write (i32.const 1) (i32.const 256) (i32.const 12))))
"""

EXIT_3 = r"""
  (data (i32.const 256) "about to fail\n")
  (func (export "_start")
    (drop (call $write (i32.const 2) (i32.const 256) (i32.const 14)))
    (call $proc_exit (i32.const 3)))
"""

EXIT_0 = r"""
  (data (i32.const 256) "{}")
  (func (export "_start")
    (drop (call $write (i32.const 1) (i32.const 256) (i32.const 2)))
    (call $proc_exit (i32.const 0)))
"""

LOOP = r"""
  (func (export "_start") (loop $forever (br $forever)))
"""

# poll_oneoff on the monotonic clock, 60 s: far past any test's timeout.
SLEEP_LONG = r"""
  (data (i32.const 256) "woke up")
  (func (export "_start")
    (drop (call $sleep (i64.const 60000000000)))
    (drop (call $write (i32.const 1) (i32.const 256) (i32.const 7))))
"""

# Sleep 300 ms, then echo stdin (a slow but well-behaved function).
NAP = r"""
  (func (export "_start")
    (local $n i32)
    (drop (call $sleep (i64.const 300000000)))
    (i32.store (i32.const 16) (i32.const 4096))
    (i32.store (i32.const 20) (i32.const 60000))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
    (drop (call $write (i32.const 1) (i32.const 4096) (i32.load (i32.const 24)))))
"""

# An absolute wait: read the monotonic clock, wait until now + 50 ms, print the
# poll errno, the number of events and whether at least 50 ms passed.
SLEEP_UNTIL = r"""
  (func (export "_start")
    (local $start i64)
    (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 48)))
    (local.set $start (i64.load (i32.const 48)))
    (i64.store (i32.const 128) (i64.const 9))
    (i32.store8 (i32.const 136) (i32.const 0))
    (i32.store (i32.const 144) (i32.const 1))
    (i64.store (i32.const 152) (i64.add (local.get $start) (i64.const 50000000)))
    (i64.store (i32.const 160) (i64.const 0))
    (i32.store16 (i32.const 168) (i32.const 1))
    (call $num (call $poll_oneoff (i32.const 128) (i32.const 192) (i32.const 1) (i32.const 240)))
    (call $num (i32.load (i32.const 240)))
    (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 48)))
    (call $num (i64.ge_u (i64.sub (i64.load (i32.const 48)) (local.get $start))
                         (i64.const 50000000))))
"""

# Grow memory 1 MiB at a time until refused, then fail like a C program's abort.
MEMORY_BOMB = r"""
  (func (export "_start")
    (block $refused
      (loop $grow
        (br_if $refused (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (br $grow)))
    unreachable)
"""

# The same, but the program exits with status 1 (malloc returned NULL, handled).
MEMORY_BOMB_EXIT = r"""
  (func (export "_start")
    (block $refused
      (loop $grow
        (br_if $refused (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (br $grow)))
    (call $proc_exit (i32.const 1)))
"""

RECURSION = r"""
  (func $deeper (param $n i32) (result i32)
    (i32.add (call $deeper (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func (export "_start") (drop (call $deeper (i32.const 0))))
"""

TRAP = r"""
  (func (export "_start") unreachable)
"""

# 60000-byte writes to stdout, forever.
STDOUT_FLOOD = r"""
  (func (export "_start")
    (memory.fill (i32.const 4096) (i32.const 120) (i32.const 60000))
    (loop $forever
      (drop (call $write (i32.const 1) (i32.const 4096) (i32.const 60000)))
      (br $forever)))
"""

# One single 7 MiB write to stdout.
HUGE_RESULT = r"""
  (func (export "_start")
    (memory.fill (i32.const 0) (i32.const 120) (i32.const 7340032))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 7340032))))
"""

# 200 × 60000 bytes (12 MB) to stderr, then a small JSON result.
STDERR_FLOOD = r"""
  (data (i32.const 256) "{\"ok\":true}")
  (func (export "_start")
    (local $i i32)
    (memory.fill (i32.const 4096) (i32.const 101) (i32.const 60000))
    (loop $again
      (drop (call $write (i32.const 2) (i32.const 4096) (i32.const 60000)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 200))))
    (drop (call $write (i32.const 1) (i32.const 256) (i32.const 11))))
"""

# Try the host's files: fd 3 is not preopened, so every call fails in the guest.
# Prints the errno of fd_prestat_get(3), path_open("/etc/passwd"),
# path_open("../../etc/passwd") and path_open(fd 0, "etc/passwd").
FILES = r"""
  (data (i32.const 256) "/etc/passwd")
  (data (i32.const 288) "../../etc/passwd")
  (data (i32.const 320) "etc/passwd")
  (func (export "_start")
    (call $num (call $fd_prestat_get (i32.const 3) (i32.const 48)))
    (call $num (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 11)
      (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 48)))
    (call $num (call $path_open (i32.const 3) (i32.const 0) (i32.const 288) (i32.const 16)
      (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 48)))
    (call $num (call $path_open (i32.const 0) (i32.const 0) (i32.const 320) (i32.const 10)
      (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 48))))
"""

# Print the environment block ("K=V\0K=V\0...") on stdout.
ENVIRON = r"""
  (func (export "_start")
    (drop (call $environ_sizes_get (i32.const 40) (i32.const 44)))
    (drop (call $environ_get (i32.const 4096) (i32.const 8192)))
    (drop (call $write (i32.const 1) (i32.const 8192) (i32.load (i32.const 44)))))
"""

ARGS = r"""
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 40) (i32.const 44)))
    (drop (call $args_get (i32.const 4096) (i32.const 8192)))
    (drop (call $write (i32.const 1) (i32.const 8192) (i32.load (i32.const 44)))))
"""

# Host-call arguments that point outside the guest's memory: EFAULT, no crash.
BAD_POINTERS = r"""
  (func (export "_start")
    ;; iovec pointing past the end of memory
    (i32.store (i32.const 0) (i32.const 0x7ffffff0))
    (i32.store (i32.const 4) (i32.const 1000))
    (call $num (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    ;; iovec array itself out of bounds
    (call $num (call $fd_write (i32.const 1) (i32.const 0xfffffff0) (i32.const 4) (i32.const 8)))
    ;; result pointer out of bounds
    (call $num (call $fd_read (i32.const 0) (i32.const 16) (i32.const 0) (i32.const -4)))
    ;; poll with subscriptions out of bounds
    (call $num (call $poll_oneoff (i32.const 131050) (i32.const 192) (i32.const 1) (i32.const 240)))
    ;; a write to a descriptor that does not exist
    (call $num (call $write (i32.const 7) (i32.const 256) (i32.const 1))))
"""

# A poll with millions of subscriptions (what a guest with 128 MB can hand the
# host): print the errno, then a normal one-subscription sleep of 1 ms still works.
POLL_FLOOD = r"""
  (func (export "_start")
    (call $num (call $poll_oneoff (i32.const 4096) (i32.const 4096) (i32.const 2000000)
      (i32.const 240)))
    (call $num (call $sleep (i64.const 1000000))))
"""

# Handler glue's shape: declares the result channel (fd 3); the handler's own
# print on fd 1 is log, then a line on fd 2, then the result on fd 3.
RESULT_CHANNEL = r"""
  (data (i32.const 256) "printed by the handler\n")
  (data (i32.const 320) "on stderr\n")
  (data (i32.const 384) "{\"ok\":true}")
  (func (export "nimbus_result_fd3"))
  (func (export "_start")
    (call $num (call $write (i32.const 1) (i32.const 256) (i32.const 23)))
    (drop (call $write (i32.const 2) (i32.const 320) (i32.const 10)))
    (drop (call $write (i32.const 3) (i32.const 384) (i32.const 11))))
"""

# A program writing to fd 3 without declaring it: the write fails (its errno is
# printed on stdout, the result); fd 1 stays the result.
UNDECLARED_FD3 = r"""
  (data (i32.const 384) "{\"ok\":true}")
  (func (export "_start")
    (call $num (call $write (i32.const 3) (i32.const 384) (i32.const 11))))
"""


# One fd_write of 512 iovecs of the whole 8 MiB memory to stderr: 4 GiB, one byte
# more than nwritten (a u32) can say. Prints the errno and nwritten in 8 MiB units.
HUGE_WRITEV = r"""
  (func (export "_start")
    (local $i i32)
    (loop $fill
      (i32.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))
      (i32.store (i32.add (i32.const 4100) (i32.shl (local.get $i) (i32.const 3)))
        (i32.const 0x800000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 512))))
    (local.set $i (call $fd_write (i32.const 2) (i32.const 4096) (i32.const 512) (i32.const 64)))
    (call $num (local.get $i))
    (call $num (i32.shr_u (i32.load (i32.const 64)) (i32.const 23))))
"""

# Not a command: exports no `_start`.
NO_START = r"""
  (func (export "main"))
"""


@functools.cache
def wat_module(name: str) -> bytes:
    body = globals()[name]
    pages = {"HUGE_RESULT": 120, "POLL_FLOOD": 2048, "HUGE_WRITEV": 128}.get(name, 2)
    return module(body, pages)


# -- components (the nimbus:function/handler world, hand-lowered) ------------------
#
# handle(event, context) -> result<string, error-info> lowers to
# (event_ptr, event_len, ctx_ptr, ctx_len) -> retptr, where the return area holds
# the discriminant at +0 and the payload from +4: (ptr, len) for ok, three
# (ptr, len) pairs for the error record.


def lifted(inner: str, instance: str = "$i") -> bytes:
    """A component: `inner` (core modules and instances) with `instance`'s `handle`
    lifted as the handler world's export."""
    return bytes(
        wasmtime.wat2wasm(f"""(component {inner}
  (type $err (record (field "type" string) (field "message" string) (field "stack" string)))
  (export $e "error-info" (type $err))
  (func $h (param "event" string) (param "context" string) (result (result string (error $e)))
    (canon lift (core func {instance} "handle") (memory (core memory {instance} "memory"))
      (realloc (core func {instance} "realloc")) string-encoding=utf8))
  (export "handle" (func $h)))""")
    )


def component(body: str, extra: str = "", pages: int = 1) -> bytes:
    wat = f"""
  (core module $m
    (memory (export "memory") {pages})
    (global $heap (mut i32) (i32.const 65536))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (if (i32.gt_u (i32.add (global.get $heap) (local.get 3))
                    (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.shr_u (local.get 3) (i32.const 16))
                                          (i32.const 1))))))
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (local.get $p))
    (data (i32.const 256) "ValueError")
    (data (i32.const 272) "bad event")
    (data (i32.const 288) "at handle (guest.wat:1)\\nat main (guest.wat:2)")
    {extra}
    (func (export "handle") (param $ev i32) (param $evlen i32) (param $ctx i32) (param $ctxlen i32)
      (result i32)
      {body})
  )
  (core instance $i (instantiate $m))"""
    return lifted(wat)


def _ok(ptr: str, length: str) -> str:
    return f"""
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) {ptr})
      (i32.store (i32.const 24) {length})
      (i32.const 16)"""


def _ok_decimal(number: str, end: int, area: int) -> str:
    """Return the i32 local `number` (used up) as its decimal digits, written backwards
    ending at `end`, the ok string of the result at `area`; needs a local `$p`."""
    return f"""
      (local.set $p (i32.const {end}))
      (loop $digit
        (local.set $p (i32.sub (local.get $p) (i32.const 1)))
        (i32.store8 (local.get $p)
          (i32.add (i32.const 48) (i32.rem_u (local.get {number}) (i32.const 10))))
        (local.set {number} (i32.div_u (local.get {number}) (i32.const 10)))
        (br_if $digit (local.get {number})))
      (i32.store8 (i32.const {area}) (i32.const 0))
      (i32.store (i32.const {area + 4}) (local.get $p))
      (i32.store (i32.const {area + 8}) (i32.sub (i32.const {end}) (local.get $p)))
      (i32.const {area})"""


C_ECHO = _ok("(local.get $ev)", "(local.get $evlen)")
C_CONTEXT = _ok("(local.get $ctx)", "(local.get $ctxlen)")
C_ERROR = """
      (i32.store8 (i32.const 16) (i32.const 1))
      (i32.store (i32.const 20) (i32.const 256)) (i32.store (i32.const 24) (i32.const 10))
      (i32.store (i32.const 28) (i32.const 272)) (i32.store (i32.const 32) (i32.const 9))
      (i32.store (i32.const 36) (i32.const 288)) (i32.store (i32.const 40) (i32.const 45))
      (i32.const 16)"""
C_LOOP = "(loop $forever (br $forever)) (i32.const 0)"
C_TRAP = "unreachable"
C_RECURSION = "(call $deeper) (i32.const 0)"
C_RECURSION_EXTRA = "(func $deeper (call $deeper))"
# A 7 MiB string of spaces.
C_HUGE = (
    "(drop (memory.grow (i32.const 120))) (memory.fill (i32.const 0) (i32.const 32)"
    " (i32.const 7340032))" + _ok("(i32.const 0)", "(i32.const 7340032)")
)


@functools.cache
def wat_component(name: str) -> bytes:
    extra = C_RECURSION_EXTRA if name == "C_RECURSION" else ""
    return component(globals()[name], extra)


# A handler component that blocks in one WASI preview 2 host call for ~31 years:
# `pollable.block` on `subscribe-duration`. The epoch deadline cannot interrupt a
# host call, so its thread stays behind after its caller's timeout, for good.
C_SLEEP_FOREVER_WAT = r"""
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow 0))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type $p))
    (export "pollable" (type $pe (eq $p)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $pe))))))
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core module $m
    (import "host" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "host" "block" (func $block (param i32)))
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "handle") (param i32 i32 i32 i32) (result i32)
      (call $block (call $subscribe (i64.const 1000000000000000000)))
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 0))
      (i32.store (i32.const 24) (i32.const 0))
      (i32.const 16)))
  (core instance $host (export "subscribe" (func $subscribe)) (export "block" (func $block)))
  (core instance $i (instantiate $m (with "host" (instance $host))))
"""


def sleep_forever_component() -> bytes:
    return lifted(C_SLEEP_FOREVER_WAT)


# A hostile handler component with two linear memories (two core modules): it
# grows both until refused and returns the total page count (64 KiB pages). Under
# a per-memory limit that total is twice memory_mb.
C_TWO_MEMORIES_WAT = (
    r"""
  (core module $b
    (memory (export "memory") 1)
    (func (export "grow_all") (result i32)
      (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
      (memory.size)))
  (core instance $bi (instantiate $b))
  (core module $a
    (import "b" "grow_all" (func $grow_b (result i32)))
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "handle") (param i32 i32 i32 i32) (result i32)
      (local $pages i32) (local $p i32)
      (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
      (local.set $pages (i32.add (memory.size) (call $grow_b)))"""
    + _ok_decimal("$pages", end=64, area=0)
    + """))
  (core instance $ai (instantiate $a (with "b" (instance $bi))))
"""
)


def two_memories_component() -> bytes:
    return lifted(C_TWO_MEMORIES_WAT, "$ai")


# A handler component that writes 1600 chunks of 4 KiB (6.25 MiB, past the 1 MiB log
# cap) to `wasi:cli/stderr` with `blocking-write-and-flush` (4096 bytes at most per
# call) and returns how many of those writes failed, in decimal.
C_LOG_FLOOD_WAT = (
    r"""
  (import "wasi:io/error@0.2.0" (instance $ioerr (export "error" (type (sub resource)))))
  (alias export $ioerr "error" (type $error))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (alias outer 1 $error (type $e))
    (export "error" (type $ee (eq $e)))
    (export "output-stream" (type $os (sub resource)))
    (type $se (variant (case "last-operation-failed" (own $ee)) (case "closed")))
    (export "stream-error" (type $sev (eq $se)))
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" (borrow $os)) (param "contents" (list u8))
            (result (result (error $sev)))))))
  (alias export $streams "output-stream" (type $output))
  (import "wasi:cli/stderr@0.2.0" (instance $stderr
    (alias outer 1 $output (type $o))
    (export "output-stream" (type $oe (eq $o)))
    (export "get-stderr" (func (result (own $oe))))))
  (core module $memory (memory (export "memory") 2))
  (core instance $mem (instantiate $memory))
  (core func $get_stderr (canon lower (func $stderr "get-stderr")))
  (core func $write (canon lower (func $streams "[method]output-stream.blocking-write-and-flush")
    (memory (core memory $mem "memory"))))
  (core module $m
    (import "mem" "memory" (memory 2))
    (import "host" "get_stderr" (func $get_stderr (result i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))
    (export "memory" (memory 0))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "handle") (param i32 i32 i32 i32) (result i32)
      (local $out i32) (local $i i32) (local $failed i32) (local $p i32)
      (local.set $out (call $get_stderr))
      (memory.fill (i32.const 65536) (i32.const 101) (i32.const 4096))
      (loop $flood
        ;; the result<_, stream-error> lands at 32: its first byte is 1 for an error
        (call $write (local.get $out) (i32.const 65536) (i32.const 4096) (i32.const 32))
        (local.set $failed (i32.add (local.get $failed) (i32.load8_u (i32.const 32))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $flood (i32.lt_u (local.get $i) (i32.const 1600))))"""
    + _ok_decimal("$failed", end=128, area=16)
    + """))
  (core instance $host (export "get_stderr" (func $get_stderr)) (export "write" (func $write)))
  (core instance $i (instantiate $m (with "mem" (instance $mem)) (with "host" (instance $host))))
"""
)


def log_flood_component() -> bytes:
    return lifted(C_LOG_FLOOD_WAT)


# A handler component importing an interface no host provides: it deployed, and its
# every invoke then failed to instantiate.
C_MISSING_IMPORT_WAT = r"""
  (import "acme:kv/store@1.0.0" (instance $kv
    (export "get" (func (param "key" string) (result string)))))
  (core module $m
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "handle") (param i32 i32 i32 i32) (result i32)
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (i32.const 0))
      (i32.store (i32.const 24) (i32.const 0))
      (i32.const 16)))
  (core instance $i (instantiate $m))
"""


def missing_import_component() -> bytes:
    return lifted(C_MISSING_IMPORT_WAT)


# A handler component whose first core instance's start function never returns.
C_START_LOOP_WAT = r"""
  (core module $spin (func $forever (loop $l (br $l))) (start $forever))
  (core instance $s (instantiate $spin))
  (core module $m
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
    (func (export "handle") (param i32 i32 i32 i32) (result i32) (i32.const 16)))
  (core instance $i (instantiate $m))
"""


def start_loop_component() -> bytes:
    return lifted(C_START_LOOP_WAT)

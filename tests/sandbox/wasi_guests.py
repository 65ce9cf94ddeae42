"""WASI preview 1 conformance guests in WAT: each reports what it saw on stdout.

Each is a property of the WebAssembly wasi-testsuite, written here (its cases
are not installable from our registries): environ, args, clocks, random,
proc_exit, fd_write and fd_read on stdin. `$num` prints 0..999 as three digits
and a space; buffers start at 4096 (pointer arrays) and 8192 (strings).
"""

from __future__ import annotations

import functools

from .guests import module

# Print each of `$count` NUL-terminated strings through the pointer array at 4096,
# NUL included: what a C program walking environ/argv would read.
_STRINGS = r"""
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $scan
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $scan)))
    (local.get $n))
  (func $strings (param $count i32) (local $i i32) (local $p i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (local.set $p (i32.load (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 2)))))
      (drop (call $write (i32.const 1) (local.get $p)
        (i32.add (call $strlen (local.get $p)) (i32.const 1))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
"""


def _report(sizes_get: str, get: str) -> str:
    """`sizes_get`'s errno, count and size, `get`'s errno, then every string."""
    return (
        _STRINGS
        + f"""
  (func (export "_start")
    (call $num (call ${sizes_get} (i32.const 40) (i32.const 44)))
    (call $num (i32.load (i32.const 40)))
    (call $num (i32.load (i32.const 44)))
    (call $num (call ${get} (i32.const 4096) (i32.const 8192)))
    (call $strings (i32.load (i32.const 40))))
"""
    )


ENVIRON_REPORT = _report("environ_sizes_get", "environ_get")
ARGS_REPORT = _report("args_sizes_get", "args_get")

# Asks for NIMBUS_CONTEXT by exporting `nimbus_context_env`; otherwise ENVIRON_REPORT.
ENVIRON_ASKING = (
    ENVIRON_REPORT
    + r"""
  (func (export "nimbus_context_env"))
"""
)

# Six errnos (realtime, monotonic, monotonic after a 20 ms sleep, the resolution
# of both, process CPU time), then their six u64 values, raw.
CLOCKS = r"""
  (func (export "_start")
    (call $num (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 4096)))
    (call $num (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 4104)))
    (drop (call $sleep (i64.const 20000000)))
    (call $num (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 4112)))
    (call $num (call $clock_res_get (i32.const 0) (i32.const 4120)))
    (call $num (call $clock_res_get (i32.const 1) (i32.const 4128)))
    (call $num (call $clock_time_get (i32.const 2) (i64.const 1) (i32.const 4136)))
    (drop (call $write (i32.const 1) (i32.const 4096) (i32.const 48))))
"""

# Two random_get errnos, then the two 32-byte buffers they filled.
RANDOM = r"""
  (func (export "_start")
    (call $num (call $random_get (i32.const 4096) (i32.const 32)))
    (call $num (call $random_get (i32.const 4128) (i32.const 32)))
    (drop (call $write (i32.const 1) (i32.const 4096) (i32.const 64))))
"""

# Prints {"bye":1}, then exits with the decimal number the event starts with.
EXIT_WITH = r"""
  (data (i32.const 256) "{\"bye\":1}")
  (func (export "_start") (local $n i32) (local $i i32) (local $c i32) (local $len i32)
    (i32.store (i32.const 16) (i32.const 4096))
    (i32.store (i32.const 20) (i32.const 16))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
    (local.set $len (i32.load (i32.const 24)))
    (block $done (loop $digit
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $c (i32.load8_u (i32.add (i32.const 4096) (local.get $i))))
      (br_if $done (i32.or (i32.lt_u (local.get $c) (i32.const 48))
                           (i32.gt_u (local.get $c) (i32.const 57))))
      (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10))
                             (i32.sub (local.get $c) (i32.const 48))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $digit)))
    (drop (call $write (i32.const 1) (i32.const 256) (i32.const 9)))
    (call $proc_exit (local.get $n)))
"""

# One gathered write of "ab", "" and "cde" to stdout, a line to stderr, a write to
# fd 5 (none); then the gathered count and fd 5's errno.
WRITES = r"""
  (data (i32.const 256) "abcde")
  (data (i32.const 272) "to the log\n")
  (func (export "_start") (local $errno i32)
    (i32.store (i32.const 0) (i32.const 256)) (i32.store (i32.const 4) (i32.const 2))
    (i32.store (i32.const 8) (i32.const 258)) (i32.store (i32.const 12) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 258)) (i32.store (i32.const 20) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 3) (i32.const 40)))
    (local.set $errno (call $write (i32.const 2) (i32.const 272) (i32.const 11)))
    (call $num (i32.load (i32.const 40)))
    (call $num (local.get $errno))
    (call $num (call $write (i32.const 5) (i32.const 256) (i32.const 1))))
"""

# stdin read in scattered 3- and 2-byte pieces until EOF, echoed to stdout; then
# "|" and the errno and count of one more read past EOF.
READS = r"""
  (data (i32.const 256) "|")
  (func (export "_start") (local $n i32) (local $at i32)
    (local.set $at (i32.const 8192))
    (block $eof (loop $more
      (i32.store (i32.const 0) (local.get $at)) (i32.store (i32.const 4) (i32.const 3))
      (i32.store (i32.const 8) (i32.add (local.get $at) (i32.const 3)))
      (i32.store (i32.const 12) (i32.const 2))
      (br_if $eof (call $fd_read (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 40)))
      (local.set $n (i32.load (i32.const 40)))
      (br_if $eof (i32.eqz (local.get $n)))
      (local.set $at (i32.add (local.get $at) (local.get $n)))
      (br $more)))
    (drop (call $write (i32.const 1) (i32.const 8192) (i32.sub (local.get $at) (i32.const 8192))))
    (drop (call $write (i32.const 1) (i32.const 256) (i32.const 1)))
    (i32.store (i32.const 0) (local.get $at)) (i32.store (i32.const 4) (i32.const 5))
    (call $num (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 40)))
    (call $num (i32.load (i32.const 40))))
"""


@functools.cache
def wasi_guest(name: str) -> bytes:
    return module(globals()[name])

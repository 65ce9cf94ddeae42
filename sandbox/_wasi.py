"""WASI preview 1 for command modules: wasmtime's, with stdio, clocks and sleep made ours.

wasmtime provides every `wasi_snapshot_preview1` import (args, environ,
random, proc_exit, fd_fdstat_get, ...). Three are shadowed by host functions
defined here, because they decide the limits (stdin is wasmtime's own,
reading the event from memory: see `_module.py`):

- `fd_write` — the result and the log go to Python buffers whose caps are
  checked on every write: the result past 6 MB stops the guest at once
  (`result_too_large`); the log keeps its first 1 MB and counts the rest,
  which is dropped as it is written. An output flood never reaches memory
  or disk beyond the caps. A program's result is its fd 1 and its log fd 2.
  Handler-form glue (C, Rust) declares the result channel instead, by
  exporting `RESULT_CHANNEL_EXPORT`: its result goes to fd 3
  (`HANDLER_RESULT_FD`) and the handler's own prints on fd 1 join fd 2 in
  the log, as on Lambda, so a `printf` can never corrupt the result.
- `poll_oneoff` — the only WASI call that waits (at most 64 subscriptions: only
  fds 0-3 and clocks exist, so more is EINVAL, never a long host loop). A clock wait sleeps at most
  until the invocation's deadline; past it the guest is stopped with a trap,
  so a sleeping guest returns its caller's thread at the deadline.
- `clock_time_get` — so absolute-time waits in `poll_oneoff` use the same
  monotonic clock the guest read (origin: the invocation's start).

No directories are preopened and no sockets exist, so no other descriptor
than 0, 1, 2 (and the declared result channel) can be valid: anything else is
EBADF, as wasmtime would say.
Nothing else in WASI preview 1 blocks, which is why command modules can run
on the caller's own thread (see `_module.py`).

The host functions use wasmtime's *unchecked* callback ABI through the raw C
API (`wasmtime._bindings`): it skips the per-call wrapping of wasmtime-py's
high-level trampoline. Every guest pointer and length is bounds-checked
against the guest's memory before it is read or written.
"""

from __future__ import annotations

import ctypes
import struct
import threading
import time

import wasmtime
from wasmtime import _bindings as raw
from wasmtime import _ffi as ffi

from ._capi import holding_gil
from ._types import LOG_LIMIT_BYTES, RESULT_LIMIT_BYTES

# WASI errno values.
_SUCCESS, _EBADF, _EFAULT, _EINVAL = 0, 8, 21, 28
_MAX_IOVS = 1024
# NOTE(security): only fds 0-3 and clocks exist, so a real poll needs a handful of
# subscriptions; a hostile count would hold the GIL in a Python loop for seconds.
_MAX_SUBSCRIPTIONS = 64
_SUBSCRIPTION, _EVENT = 48, 32
_CLOCK_REALTIME, _CLOCK_MONOTONIC = 0, 1
# Process and thread CPU time: wasmtime answers EBADF for both, and so do we.
_CPU_CLOCKS = (2, 3)
_EVENTTYPE_CLOCK, _EVENTTYPE_FD_READ, _EVENTTYPE_FD_WRITE = 0, 1, 2

PROGRAM_RESULT_FD = 1  # a program's stdout is its result
HANDLER_RESULT_FD = 3  # handler glue writes the result here; its stdout is log
# An export (any function) by which a command module says it uses HANDLER_RESULT_FD.
RESULT_CHANNEL_EXPORT = "nimbus_result_fd3"


class GuestIO:
    """One invocation as the host functions see it: stdin, capped outputs, deadline."""

    __slots__ = (
        "clock_origin",
        "deadline_ns",
        "host_error",
        "result_fd",
        "stderr",
        "stderr_dropped",
        "stderr_len",
        "stdin",
        "stdout",
        "stdout_len",
        "timed_out",
        "too_large",
    )

    def __init__(
        self, stdin: bytes, timeout_sec: float, result_fd: int = PROGRAM_RESULT_FD
    ) -> None:
        self.stdin = stdin
        self.result_fd = result_fd
        self.stdout: list[bytes] = []
        self.stdout_len = 0
        self.stderr: list[bytes] = []
        self.stderr_len = 0
        self.stderr_dropped = 0
        self.clock_origin = time.monotonic_ns()
        self.deadline_ns = self.clock_origin + int(timeout_sec * 1e9)
        self.timed_out = False
        self.too_large = False
        self.host_error: str | None = None

    def write_stdout(self, address: int, length: int) -> bool:
        if self.stdout_len + length > RESULT_LIMIT_BYTES:
            self.too_large = True
            return False
        self.stdout.append(ctypes.string_at(address, length))
        self.stdout_len += length
        return True

    def write_stderr(self, address: int, length: int) -> None:
        keep = min(length, LOG_LIMIT_BYTES - self.stderr_len)
        if keep > 0:
            self.stderr.append(ctypes.string_at(address, keep))
            self.stderr_len += keep
        self.stderr_dropped += length - max(keep, 0)


_current = threading.local()


def bind(io: GuestIO) -> None:
    """Route this thread's host calls to `io` (one guest runs per thread at a time)."""
    _current.io = io


def unbind() -> None:
    _current.io = None


class _Fault(Exception):
    """A guest pointer outside its memory: the call answers EFAULT."""


_MEMORY_NAME = b"memory"
_export_get = holding_gil("wasmtime_caller_export_get")
_caller_context = holding_gil("wasmtime_caller_context")
# PERF(sandbox): the data pointer as a plain int, without a ctypes.cast per host call.
_memory_data = holding_gil("wasmtime_memory_data", restype=ctypes.c_void_p)
_memory_data_size = holding_gil("wasmtime_memory_data_size")
_trap_new = holding_gil("wasmtime_trap_new")
_EXTERN_MEMORY = ffi.WASMTIME_EXTERN_MEMORY.value
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_EVENT_STRUCT = struct.Struct("<QHBxxxxxQH6x")  # userdata, error, type, nbytes, flags


def _memory(caller) -> tuple[int, int]:
    """(host address, byte size) of the calling instance's exported memory."""
    item = raw.wasmtime_extern_t()
    if not _export_get(caller, _MEMORY_NAME, 6, ctypes.byref(item)):
        raise _Fault
    if item.kind != _EXTERN_MEMORY:
        raise _Fault
    context = _caller_context(caller)
    memory = item.of.memory
    size = _memory_data_size(context, ctypes.byref(memory))
    base = _memory_data(context, ctypes.byref(memory))
    if not base or not size:
        raise _Fault
    return base, size


def _check(size: int, pointer: int, length: int) -> None:
    if pointer + length > size:
        raise _Fault


def _trap(message: str) -> int:
    encoded = message.encode()
    return ctypes.cast(_trap_new(encoded, len(encoded)), ctypes.c_void_p).value


def _u32(value: int) -> int:
    return value & 0xFFFFFFFF


def _iovecs(base: int, size: int, iovs: int, count: int) -> list[tuple[int, int]]:
    if count > _MAX_IOVS:
        raise _Fault
    _check(size, iovs, 8 * count)
    words = struct.unpack(f"<{2 * count}I", ctypes.string_at(base + iovs, 8 * count))
    vecs = []
    for i in range(count):
        pointer, length = words[2 * i], words[2 * i + 1]
        _check(size, pointer, length)
        vecs.append((pointer, length))
    return vecs


def _host_call(body):
    """Wrap a host function: map faults to EFAULT, never let an exception escape to C."""

    def callback(_env, caller, args, _nargs):
        io = getattr(_current, "io", None)
        if io is None:
            return _trap("nimbus: host call outside an invocation")
        try:
            return body(io, caller, args)
        except _Fault:
            args[0].i32 = _EFAULT
            return 0
        except BaseException as exc:  # must not unwind into wasmtime
            io.host_error = f"{type(exc).__name__}: {exc}"
            return _trap("nimbus: host error")

    return raw.wasmtime_func_unchecked_callback_t(callback)


def _fd_write(io: GuestIO, caller, args) -> int:
    fd, iovs, count, written_ptr = (_u32(args[i].i32) for i in range(4))
    if fd not in (1, 2, io.result_fd):
        args[0].i32 = _EBADF
        return 0
    base, size = _memory(caller)
    _check(size, written_ptr, 4)
    total = 0
    for pointer, length in _iovecs(base, size, iovs, count):
        if total + length > 0xFFFFFFFF:
            break  # a short write: nwritten (a u32) says how much was taken
        if fd == io.result_fd:
            if not io.write_stdout(base + pointer, length):
                return _trap("nimbus: result too large")
        else:
            io.write_stderr(base + pointer, length)
        total += length
    ctypes.memmove(base + written_ptr, _U32.pack(total), 4)
    args[0].i32 = _SUCCESS
    return 0


def _now(io: GuestIO, clock_id: int) -> int | None:
    if clock_id == _CLOCK_REALTIME:
        return time.time_ns()
    if clock_id == _CLOCK_MONOTONIC:
        return time.monotonic_ns() - io.clock_origin
    return None


def _clock_time_get(io: GuestIO, caller, args) -> int:
    clock_id, time_ptr = _u32(args[0].i32), _u32(args[2].i32)
    now = _now(io, clock_id)
    if now is None:
        args[0].i32 = _EBADF if clock_id in _CPU_CLOCKS else _EINVAL
        return 0
    base, size = _memory(caller)
    _check(size, time_ptr, 8)
    ctypes.memmove(base + time_ptr, _U64.pack(now), 8)
    args[0].i32 = _SUCCESS
    return 0


def _poll_oneoff(io: GuestIO, caller, args) -> int:
    in_ptr, out_ptr, count, nevents_ptr = (_u32(args[i].i32) for i in range(4))
    if count == 0 or count > _MAX_SUBSCRIPTIONS:
        args[0].i32 = _EINVAL
        return 0
    if time.monotonic_ns() >= io.deadline_ns:
        io.timed_out = True
        return _trap("nimbus: deadline reached")
    base, size = _memory(caller)
    _check(size, in_ptr, _SUBSCRIPTION * count)
    _check(size, out_ptr, _EVENT * count)
    _check(size, nevents_ptr, 4)
    subs = ctypes.string_at(base + in_ptr, _SUBSCRIPTION * count)

    ready: list[tuple[int, int, int, int]] = []  # userdata, errno, type, nbytes
    clocks: list[tuple[int, int]] = []  # userdata, wake-up time (host monotonic ns)
    now = time.monotonic_ns()
    for i in range(count):
        off = i * _SUBSCRIPTION
        userdata, tag = _U64.unpack_from(subs, off)[0], subs[off + 8]
        if tag == _EVENTTYPE_CLOCK:
            clock_id = _U32.unpack_from(subs, off + 16)[0]
            timeout = _U64.unpack_from(subs, off + 24)[0]
            absolute = subs[off + 40] & 1
            guest_now = _now(io, clock_id)
            if guest_now is None:
                ready.append((userdata, _EINVAL, tag, 0))
            else:
                clocks.append((userdata, now + (timeout - guest_now if absolute else timeout)))
        elif tag in (_EVENTTYPE_FD_READ, _EVENTTYPE_FD_WRITE):
            fd = _U32.unpack_from(subs, off + 16)[0]
            if tag == _EVENTTYPE_FD_READ and fd == 0:
                ready.append((userdata, _SUCCESS, tag, len(io.stdin)))  # a hint: ≤ what is left
            elif tag == _EVENTTYPE_FD_WRITE and fd in (1, 2, io.result_fd):
                ready.append((userdata, _SUCCESS, tag, 1 << 16))
            else:
                ready.append((userdata, _EBADF, tag, 0))
        else:
            args[0].i32 = _EINVAL
            return 0

    if not ready and clocks:
        wake = min(w for _, w in clocks)
        if wake > io.deadline_ns:
            # NOTE(sandbox): the guest asked to sleep past its deadline: sleep until
            # the deadline only, then stop it, so its caller gets the timeout on time.
            time.sleep(max(0, io.deadline_ns - now) / 1e9)
            io.timed_out = True
            return _trap("nimbus: deadline reached while sleeping")
        if wake > now:
            time.sleep((wake - now) / 1e9)
        now = time.monotonic_ns()
    ready.extend((u, _SUCCESS, _EVENTTYPE_CLOCK, 0) for u, w in clocks if w <= now)

    events = b"".join(_EVENT_STRUCT.pack(u, err, t, n, 0) for u, err, t, n in ready)
    ctypes.memmove(base + out_ptr, events, len(events))
    ctypes.memmove(base + nevents_ptr, _U32.pack(len(ready)), 4)
    args[0].i32 = _SUCCESS
    return 0


_I32, _I64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
_OVERRIDES = {
    "fd_write": ([_I32] * 4, _fd_write),
    "poll_oneoff": ([_I32] * 4, _poll_oneoff),
    "clock_time_get": ([_I32, _I64, _I32], _clock_time_get),
}
_CALLBACKS = {name: _host_call(body) for name, (_, body) in _OVERRIDES.items()}
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(0)


def make_module_linker(engine: wasmtime.Engine, native_fd_write: int | None) -> wasmtime.Linker:
    """wasmtime's WASI preview 1 with the three host functions above shadowing its own;
    fd_write the native helper's (`_native/module.c`, the same rules in C, writing to
    the store's `ModuleIO`) when its address is given."""
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.allow_shadowing = True
    module_name = b"wasi_snapshot_preview1"
    for name, (params, _) in _OVERRIDES.items():
        ty = wasmtime.FuncType(params, [_I32])
        encoded = name.encode()
        callback = _CALLBACKS[name]
        if name == "fd_write" and native_fd_write is not None:
            callback = raw.wasmtime_func_unchecked_callback_t(native_fd_write)
        error = raw.wasmtime_linker_define_func_unchecked(
            linker.ptr(),
            ctypes.create_string_buffer(module_name),
            len(module_name),
            ctypes.create_string_buffer(encoded),
            len(encoded),
            ty.ptr(),
            callback,
            None,
            _NO_FINALIZER,
        )
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    linker.allow_shadowing = False
    return linker

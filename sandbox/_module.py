"""Program form: run a WASI command module once, in a fresh instance, on this thread.

PERF(sandbox): this is the hot path, so it talks to wasmtime's C API
directly (`wasmtime._bindings`): one `Store`, one WASI context built from
argv/env arrays encoded once per deployment, `InstancePre` instantiate,
`_start` through the unchecked call, and the store dropped. wasmtime-py's
high-level wrappers cost more than the wasm itself for a small program.

Running on the caller's thread is safe because every import that could
block is ours (`_wasi.py`) and returns by the deadline (stdin is bytes in
memory, read by wasmtime's own fd_read); wasm code itself is stopped by the
epoch deadline.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import wasmtime
from wasmtime import _bindings as raw
from wasmtime import _ffi as ffi
from wasmtime._wasi import to_char_array

from . import _lanes, _wasi
from ._capi import holding_gil, set_epoch_deadline
from ._outcome import (
    FAILED,
    MEMORY,
    OK,
    TIMEOUT,
    TOO_LARGE,
    Outcome,
    error_failure,
    exit_failure,
    is_interrupt,
    memory_near_limit,
    reported_failure,
    trap_failure,
    truncation_note,
)
from ._pool import busy, is_exhausted
from ._types import LOG_LIMIT_BYTES, RESULT_LIMIT_BYTES, Deployment

_START = b"_start"
_MEMORY = b"memory"
_EXTERN_FUNC = ffi.WASMTIME_EXTERN_FUNC.value
_EXTERN_MEMORY = ffi.WASMTIME_EXTERN_MEMORY.value
_NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
# The invocation's context JSON, in the environment of commands the platform
# built (`Deployment.context_env`: the glue of compiled languages reads it, and
# their programs may) and of modules that ask for it by exporting
# `CONTEXT_EXPORT`; a reserved name there: it wins over an env var of that name.
# Any other module's environment is exactly its env_vars (DESIGN.md).
CONTEXT_ENV = "NIMBUS_CONTEXT"
CONTEXT_EXPORT = "nimbus_context_env"
# A table element costs 8 bytes of host memory; tables are not under memory_mb.
TABLE_ELEMENTS_LIMIT = 1_000_000
TABLES_LIMIT = 8

_store_new = holding_gil("wasmtime_store_new")
_store_context = holding_gil("wasmtime_store_context")
_store_limiter = holding_gil("wasmtime_store_limiter")
_store_delete = holding_gil("wasmtime_store_delete")
_wasi_config_new = holding_gil("wasi_config_new")
_wasi_set_argv = holding_gil("wasi_config_set_argv")
_wasi_set_env = holding_gil("wasi_config_set_env")
_wasi_set_stdin = holding_gil("wasi_config_set_stdin_bytes")
_byte_vec_new = holding_gil("wasm_byte_vec_new")
_BYTES = ctypes.POINTER(raw.wasm_byte_t)
_set_wasi = holding_gil("wasmtime_context_set_wasi")
_instantiate = raw._wasmtime_instance_pre_instantiate  # runs a start function: releases
_export_get = holding_gil("wasmtime_instance_export_get")
_call = raw._wasmtime_func_call_unchecked  # runs the guest: releases the GIL
_memory_data_size = holding_gil("wasmtime_memory_data_size")


def check_command(module: wasmtime.Module) -> None:
    """A WASI command exports `_start: () -> ()` and one memory named `memory`.

    NOTE(sandbox): `_start` is called through the unchecked ABI, which trusts
    the signature; this check is what makes that safe.
    """
    exports = {e.name: e.type for e in module.exports}
    start = exports.get("_start")
    if not isinstance(start, wasmtime.FuncType) or start.params or start.results:
        raise ValueError("not a WASI command: it must export `_start` taking and returning nothing")
    if not isinstance(exports.get("memory"), wasmtime.MemoryType):
        raise ValueError("not a WASI command: it must export its memory as `memory`")


@dataclass(frozen=True)
class LoadedModule:
    kind = "module"
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    result_fd: int  # where the result is written: fd 1, or handler glue's channel
    asks_for_context: bool  # exports CONTEXT_EXPORT: NIMBUS_CONTEXT in its environment
    # The native helper the linker's fd_write is from (then it runs the module too), or
    # None: Python's fd_write and a ctypes call per step.
    native: _lanes.ModuleHelpers | None = None
    native_addresses: tuple[int, int] = (0, 0)  # the engine's and `pre`'s, for the helper

    @classmethod
    def link(
        cls, module: wasmtime.Module, linker: wasmtime.Linker, native: _lanes.ModuleHelpers | None
    ) -> LoadedModule:
        check_command(module)
        exports = {e.name for e in module.exports}
        declared = _wasi.RESULT_CHANNEL_EXPORT in exports
        result_fd = _wasi.HANDLER_RESULT_FD if declared else _wasi.PROGRAM_RESULT_FD
        pre = linker.instantiate_pre(module)
        addresses = (_address(linker.engine.ptr()), _address(pre.ptr()))
        return cls(module, pre, result_fd, CONTEXT_EXPORT in exports, native, addresses)


def _address(pointer) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value


class WasiArgs:
    """argv and environment as C arrays, encoded once per deployment: the
    env_vars as they are, or with NIMBUS_CONTEXT, whose value is added per
    call (`environment`)."""

    def __init__(self, argv: list[str], env: Mapping[str, str]) -> None:
        self.argc = len(argv)
        self.argv = to_char_array(argv)
        self.argv_address = _address(self.argv)
        self._plain = _EnvArrays(env)
        own = {name: value for name, value in env.items() if name != CONTEXT_ENV}
        self._with_context = _EnvArrays({**own, CONTEXT_ENV: ""})

    def environment(self, context: bytes | None):
        """(count, names, values, keep-alive) for wasi_config_set_env: the env_vars,
        plus NIMBUS_CONTEXT=`context` unless it is None."""
        if context is None:
            return self._plain.with_last(None)
        return self._with_context.with_last(context)

    def addresses(self, context: bytes | None) -> tuple[int, int, int, object]:
        """`environment` as (count, names' address, values' address, keep-alive)."""
        if context is None:
            return self._plain.addresses(None)
        return self._with_context.addresses(context)


class _EnvArrays:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.count = len(env)
        self.names = to_char_array(list(env))
        self.names_address = _address(self.names)
        self._values = [value.encode() for value in env.values()]
        self._array = ctypes.c_char_p * self.count
        self._as_they_are = self._array(*self._values)  # only ever read

    def _with_last(self, last: bytes | None):
        """The values, the last one replaced by `last` unless it is None."""
        if last is None:
            return self._as_they_are
        return self._array(*self._values[:-1], last)

    def with_last(self, last: bytes | None):
        values = self._with_last(last)
        pointer = ctypes.cast(values, ctypes.POINTER(ctypes.POINTER(ctypes.c_char)))
        return self.count, self.names, pointer, values

    def addresses(self, last: bytes | None) -> tuple[int, int, int, object]:
        values = self._with_last(last)
        return self.count, self.names_address, ctypes.addressof(values), values


def context_json(dep: Deployment, context: Mapping) -> bytes:
    """The context a guest sees: the caller's, with the platform's keys over it."""
    full = {
        "function_name": dep.function_name,
        "version": dep.version,
        "memory_limit_mb": dep.memory_mb,
        **context,
        # The sandbox enforces the deadline, so it states it.
        "deadline_ms": int((time.time() + dep.timeout_sec) * 1000),
    }
    return orjson.dumps(full, default=str)


def run_module(
    engine: wasmtime.Engine,
    loaded: LoadedModule,
    args: WasiArgs,
    event: bytes,
    *,
    memory_bytes: int,
    timeout_sec: float,
    deadline_ticks: int,
    guest_context: bytes | None = None,
) -> Outcome:
    io = _wasi.GuestIO(event, timeout_sec, loaded.result_fd)
    _wasi.bind(io)  # poll_oneoff and clock_time_get (Python) find the call here
    try:
        invoke = _invoke if loaded.native is None else _invoke_native
        outcome, duration_ms = invoke(engine, loaded, args, event, io, memory_bytes,
                                      deadline_ticks, guest_context)  # fmt: skip
    finally:
        _wasi.unbind()
    outcome.duration_ms = duration_ms
    outcome.logs = b"".join(io.stderr)
    if io.stderr_dropped:
        outcome.logs += truncation_note(io.stderr_dropped)
    return outcome


def _invoke(
    engine: wasmtime.Engine, loaded: LoadedModule, args: WasiArgs, event: bytes,
    io: _wasi.GuestIO, memory_bytes: int, deadline_ticks: int, guest_context: bytes | None,
) -> tuple[Outcome, float]:  # fmt: skip
    """Without the native helper: each step a ctypes call, fd_write in Python."""
    started = time.perf_counter()
    store = _store_new(engine.ptr(), None, _NO_FINALIZER)
    try:
        context = _store_context(store)
        _store_limiter(store, memory_bytes, TABLE_ELEMENTS_LIMIT, 1, TABLES_LIMIT, 1)
        set_epoch_deadline(context, deadline_ticks)
        config = _wasi_config_new()
        envc, names, values, _keep = args.environment(guest_context)
        if not _wasi_set_argv(config, args.argc, args.argv) or not _wasi_set_env(
            config, envc, names, values
        ):
            raw._wasi_config_delete(config)
            raise ValueError("invalid argv or environment for WASI")
        _set_stdin(config, event)
        error = _set_wasi(context, config)  # takes ownership of config
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)

        instance = raw.wasmtime_instance_t()
        trap = ctypes.POINTER(raw.wasm_trap_t)()
        error = _instantiate(loaded.pre.ptr(), context, ctypes.byref(instance), ctypes.byref(trap))
        instantiated = not error and not trap
        if instantiated:
            item = raw.wasmtime_extern_t()
            if not _export_get(context, ctypes.byref(instance), _START, 6, ctypes.byref(item)):
                raise ValueError("module lost its _start export")  # checked at load
            assert item.kind == _EXTERN_FUNC
            error = _call(context, ctypes.byref(item.of.func), None, 0, ctypes.byref(trap))
        duration_ms = (time.perf_counter() - started) * 1000
        outcome = _classify(
            io,
            error,
            trap,
            lambda: _memory_used(context, instance) if instantiated else 0,
            memory_bytes,
        )
    finally:
        _store_delete(store)
    return outcome, duration_ms


_TRAP = ctypes.POINTER(raw.wasm_trap_t)
_ERROR = ctypes.POINTER(raw.wasmtime_error_t)


def _invoke_native(
    engine: wasmtime.Engine, loaded: LoadedModule, args: WasiArgs, event: bytes,
    io: _wasi.GuestIO, memory_bytes: int, deadline_ticks: int, guest_context: bytes | None,
) -> tuple[Outcome, float]:  # fmt: skip
    """`_invoke` in one C call that releases the GIL once (`_native/module.c`); what its
    fd_write wrote is moved into `io` as the Python fd_write would have left it."""
    native = loaded.native
    assert native is not None
    envc, names, values, _keep = args.addresses(guest_context)
    call = _lanes.ModuleCall(*loaded.native_addresses, memory_bytes, TABLE_ELEMENTS_LIMIT,
                             TABLES_LIMIT, deadline_ticks, args.argc, args.argv_address, envc,
                             names, values, event, len(event))  # fmt: skip
    output = _lanes.ModuleIO(loaded.result_fd, 0, RESULT_LIMIT_BYTES, LOG_LIMIT_BYTES)
    started = time.perf_counter()
    try:
        address = native.invoke(ctypes.byref(call), ctypes.byref(output))
        duration_ms = (time.perf_counter() - started) * 1000
        if output.out_len:
            io.stdout = [ctypes.string_at(output.out, output.out_len)]
        if output.err_len:
            io.stderr = [ctypes.string_at(output.err, output.err_len)]
        io.stderr_dropped, io.too_large = output.err_dropped, bool(output.too_large)
    finally:
        native.io_free(output)
    error = ctypes.cast(address, _ERROR) if address else None
    if call.stage == -1:
        raise ValueError("invalid argv or environment for WASI")
    if call.stage == -2:
        raise wasmtime.WasmtimeError._from_ptr(error)
    if call.stage == 1:
        raise ValueError("module lost its _start export")  # checked at load
    trap = ctypes.cast(call.trap, _TRAP) if call.trap else None
    return _classify(io, error, trap, lambda: call.memory_size, memory_bytes), duration_ms


def _set_stdin(config, event: bytes) -> None:
    """The event as the guest's stdin, read by wasmtime's own fd_read.

    PERF(sandbox): a host-function fd_read costs a Python callback per read
    (~20-40 µs each, two per small event); this is one copy into a byte vector
    the WASI context takes ownership of.
    """
    vec = raw.wasm_byte_vec_t()
    _byte_vec_new(ctypes.byref(vec), len(event), ctypes.cast(ctypes.c_char_p(event), _BYTES))
    _wasi_set_stdin(config, ctypes.byref(vec))


def _memory_used(context, instance) -> int:
    item = raw.wasmtime_extern_t()
    if not _export_get(context, ctypes.byref(instance), _MEMORY, 6, ctypes.byref(item)):
        return 0
    if item.kind != _EXTERN_MEMORY:
        return 0
    return _memory_data_size(context, ctypes.byref(item.of.memory))


def _classify(io: _wasi.GuestIO, error, trap, memory_used, memory_bytes: int) -> Outcome:
    if not error and not trap:
        return Outcome(OK, output=b"".join(io.stdout))
    # Take ownership so wasmtime's objects are freed by their wrappers.
    exc = wasmtime.WasmtimeError._from_ptr(error) if error else None
    trap_obj = wasmtime.Trap._from_ptr(trap) if trap else None
    if io.too_large:
        return Outcome(TOO_LARGE)
    if io.timed_out:
        return Outcome(TIMEOUT)
    if io.host_error is not None:
        raise RuntimeError(f"sandbox host function failed: {io.host_error}")
    if trap_obj is not None and is_interrupt(trap_obj):
        return Outcome(TIMEOUT)
    if isinstance(exc, wasmtime.ExitTrap):
        if exc.code == 0:
            return Outcome(OK, output=b"".join(io.stdout))
        reported = reported_failure(b"".join(io.stderr))
        if reported is not None:
            failure, logs = reported
            io.stderr = [logs]
        else:
            failure = exit_failure(exc.code)
    elif trap_obj is not None:
        failure = trap_failure(trap_obj)
    else:
        message = str(exc)
        if is_exhausted(message):
            raise busy()
        if "exceeds memory limits" in message or "memory minimum size" in message:
            return Outcome(MEMORY)
        failure = error_failure(exc)
    if memory_near_limit(memory_used(), memory_bytes):
        return Outcome(MEMORY)
    return Outcome(FAILED, output=b"".join(io.stdout), failure=failure)

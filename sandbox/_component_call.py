"""Calling a component export that takes strings and answers `result<string, error-info>`
(or `result<_, error-info>`) through wasmtime's C API.

PERF(sandbox): wasmtime-py's `component.Func.__call__` rebuilds the function's
type on every call (params, the result type, each case of the result's
variant) through dozens of C calls and Python objects: for a warm Python
hello that was more than half of the time spent in the call, wasm included.
Every export Nimbus calls (`handle`, `run`, `check`, `load`) takes strings
and answers such a result, so the values are built and read here by their
kind, with no type information; wasmtime still type-checks the arguments
against the function's real signature and refuses a mismatch.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from ctypes import byref
from typing import NamedTuple

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime.component import Func
from wasmtime.component._enter import maybe_raise_last_exn

from ._capi import holding_gil
from ._threads import Abandoned

_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value
_RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
_BYTES = ctypes.POINTER(ctypes.c_uint8)

# Quick calls that run no guest code keep the GIL (see _capi.py).
_byte_vec_new = holding_gil("wasm_byte_vec_new")
_val_delete = holding_gil("wasmtime_component_val_delete")
_error_delete = holding_gil("wasmtime_error_delete")
_error_delete.argtypes = (ctypes.c_void_p,)
_ERROR = ctypes.POINTER(ffi.wasmtime_error_t)


class GuestError(NamedTuple):
    """The `err` case: the guest's error-info record."""

    type: str
    message: str
    stack: str


# How a call is made elsewhere: the C call's six arguments (addresses and sizes) and
# what to do if it returns after its caller left; answers the C call's return value.
Via = Callable[[tuple[int, ...], Callable[[int | None], None]], "int | None"]


def call_strings(
    func: Func, store: wasmtime.Store, *args: str, via: Via | None = None
) -> str | GuestError | None:
    """Call `func` with string arguments; its `ok` string (None for `result<_, …>`) or
    its `err` record. Raises `wasmtime.WasmtimeError` for a trap, as wasmtime-py does.
    `via` makes the C call (on a native lane, `_threads.GuestThreads.run_native`); if
    it raises `Abandoned` the arguments stay allocated until the late return."""
    params = (ffi.wasmtime_component_val_t * len(args))()
    made = 0
    handed_over = False
    try:
        for param, text in zip(params, args, strict=True):
            data = text.encode()
            param.kind = _STRING
            _byte_vec_new(byref(param.of.string), len(data), ctypes.cast(data, _BYTES))
            made += 1
        result = ffi.wasmtime_component_val_t()
        if via is None:
            # The guest runs here: wasmtime-py's binding, which releases the GIL.
            error = ffi.wasmtime_component_func_call(
                byref(func._func), store._context(), params, len(args), byref(result), 1
            )
        else:
            context = ctypes.cast(store._context(), ctypes.c_void_p).value or 0
            call = (ctypes.addressof(func._func), context, ctypes.addressof(params), len(args),
                    ctypes.addressof(result), 1)  # fmt: skip

            def late(value: int | None, keep=(params, made, result, func, store)) -> None:
                for param in params[:made]:
                    _val_delete(byref(param))
                if value:
                    _error_delete(value)
                else:
                    _val_delete(byref(result))

            try:
                value = via(call, late)
            except Abandoned:
                handed_over = True
                raise
            error = ctypes.cast(value, _ERROR) if value else None
    finally:
        if not handed_over:
            for param in params[:made]:
                _val_delete(byref(param))
    if error:
        failure = wasmtime.WasmtimeError._from_ptr(error)
        maybe_raise_last_exn()
        raise failure
    try:
        return _lift_result(result)
    finally:
        _val_delete(byref(result))


def _lift_result(val: ffi.wasmtime_component_val_t) -> str | GuestError | None:
    if val.kind != _RESULT:
        raise TypeError(f"expected a result, the export answered kind {val.kind}")
    case = val.of.result
    payload = _lift(case.val.contents) if case.val else None
    if case.is_ok:
        if payload is not None and not isinstance(payload, str):
            raise TypeError("expected result<string, …>")
        return payload
    fields = payload if isinstance(payload, dict) else {}
    text = {name: str(fields.get(name) or "") for name in GuestError._fields}
    return GuestError(**{**text, "type": text["type"] or "Error"})


def _lift(val: ffi.wasmtime_component_val_t) -> str | dict:
    if val.kind == _STRING:
        return ctypes.string_at(val.of.string.data, val.of.string.size).decode()
    if val.kind == _RECORD:
        record = val.of.record
        entries = (record.data[i] for i in range(record.size))
        return {ffi.to_str(entry.name): _lift(entry.val) for entry in entries}
    raise TypeError(f"unexpected value kind {val.kind} in a result")

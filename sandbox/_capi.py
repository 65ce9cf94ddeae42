"""wasmtime's C API for the invoke hot path, called without releasing the GIL.

PERF(sandbox): ctypes releases the GIL around every foreign call. For calls
that take a microsecond (make a store, set its limits, look up an export)
that hands the GIL to another request thread, and taking it back waits for
that thread's switch interval — the convoy effect: with 16 invocations in
flight, a worker spent more time waiting for the GIL than running calls.
These bindings (through `ctypes.PyDLL`) keep the GIL. Anything that can run
guest code — instantiation (a module's start function) and the call itself —
keeps wasmtime-py's releasing binding, so a guest that runs until its
deadline never stops the worker's other threads.
"""

from __future__ import annotations

import ctypes

from wasmtime import _bindings as raw
from wasmtime import _ffi as ffi

_LIBRARY = ctypes.PyDLL(ffi.dll._name)


def holding_gil(name: str, restype: object = None):
    """The C function `name` with wasmtime-py's signature, called with the GIL held."""
    like = getattr(raw, f"_{name}")
    function = _LIBRARY[name]
    function.argtypes = like.argtypes
    function.restype = like.restype if restype is None else restype
    return function


# The epoch deadline of a store's context: a field write, never guest code.
set_epoch_deadline = holding_gil("wasmtime_context_set_epoch_deadline")

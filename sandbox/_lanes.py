"""The sandbox's native helper (`_native/liblane.so`, built by scripts/install.sh).

Native lanes (`_native/lane.c`): a guest call on a native thread, waited for with a
timeout, with no Python on the guest's side. A command module's run (`_native/module.c`):
instantiate and `_start` in one call, fd_write in C. A component's log (`_native/logs.c`):
the pipe its stdout and stderr write to, drained by a C thread. `None` from `library()`
when the helper is not built: guarded Python threads and Python host functions serve
instead."""

from __future__ import annotations

import ctypes
from pathlib import Path

from wasmtime import _bindings as raw
from wasmtime import _ffi as ffi

_PATH = Path(__file__).with_name("_native") / "liblane.so"
_VOID = ctypes.c_void_p
_WASMTIME = ("wasmtime_instance_pre_instantiate", "wasmtime_instance_export_get",
             "wasmtime_func_call_unchecked", "wasmtime_caller_export_get",
             "wasmtime_caller_context", "wasmtime_memory_data", "wasmtime_memory_data_size",
             "wasmtime_context_get_data", "wasmtime_trap_new", "wasmtime_store_new",
             "wasmtime_store_context", "wasmtime_store_limiter", "wasmtime_store_delete",
             "wasmtime_context_set_epoch_deadline", "wasi_config_new", "wasi_config_set_argv",
             "wasi_config_set_env", "wasi_config_set_stdin_bytes", "wasi_config_delete",
             "wasm_byte_vec_new", "wasmtime_context_set_wasi")  # fmt: skip


class _Wasmtime(ctypes.Structure):
    """`nimbus_wasmtime_t`: the wasmtime functions and layout module.c uses."""

    _fields_ = (*((name, _VOID) for name in _WASMTIME),
                ("extern_size", ctypes.c_size_t), ("extern_of", ctypes.c_size_t),
                ("kind_func", ctypes.c_uint8), ("kind_memory", ctypes.c_uint8))  # fmt: skip


class ModuleIO(ctypes.Structure):
    """`nimbus_io_t`: one module invocation's output, the store's data while it runs."""

    _fields_ = (("result_fd", ctypes.c_uint32), ("too_large", ctypes.c_uint32),
                ("result_limit", ctypes.c_uint64), ("log_limit", ctypes.c_uint64),
                ("out", _VOID), ("out_len", ctypes.c_uint64), ("out_cap", ctypes.c_uint64),
                ("err", _VOID), ("err_len", ctypes.c_uint64), ("err_cap", ctypes.c_uint64),
                ("err_dropped", ctypes.c_uint64))  # fmt: skip


class ModuleCall(ctypes.Structure):
    """`nimbus_call_t`: one module invocation's inputs, and how it ended."""

    _fields_ = (("engine", _VOID), ("pre", _VOID), ("memory_bytes", ctypes.c_int64),
                ("table_elements", ctypes.c_int64), ("tables", ctypes.c_int64),
                ("deadline_ticks", ctypes.c_uint64), ("argc", ctypes.c_size_t),
                ("argv", _VOID), ("envc", ctypes.c_size_t), ("env_names", _VOID),
                ("env_values", _VOID), ("event", ctypes.c_char_p),
                ("event_len", ctypes.c_size_t), ("trap", _VOID), ("stage", ctypes.c_int32),
                ("memory_size", ctypes.c_uint64))  # fmt: skip


class Library:
    def __init__(self, path: Path) -> None:
        # The call waits: it releases the GIL (CDLL). The others are quick: kept (PyDLL).
        waiting, quick = ctypes.CDLL(str(path)), ctypes.PyDLL(str(path))
        self.new = quick.nimbus_lane_new
        self.new.restype = _VOID
        self.new.argtypes = ()
        self.call = waiting.nimbus_lane_call
        self.call.restype = ctypes.c_int
        self.call.argtypes = (_VOID, _VOID, _VOID, _VOID, _VOID, ctypes.c_size_t, _VOID,
                              ctypes.c_size_t, ctypes.c_int64, ctypes.POINTER(_VOID))  # fmt: skip
        self.finished = quick.nimbus_lane_finished
        self.finished.restype = ctypes.c_int
        self.finished.argtypes = (_VOID, ctypes.POINTER(_VOID))
        # What a lane calls: the component call itself (the C function, not a binding).
        self.func_call = ctypes.cast(ffi.dll.wasmtime_component_func_call, _VOID).value
        try:
            self.modules: ModuleHelpers | None = ModuleHelpers(waiting, quick)
        except AttributeError:  # built before module.c: lanes only
            self.modules = None
        try:
            self.logs: LogHelpers | None = LogHelpers(quick)
        except AttributeError:  # built before logs.c
            self.logs = None


class ModuleHelpers:
    """`_native/module.c`: a command module's run and its fd_write."""

    def __init__(self, waiting: ctypes.CDLL, quick: ctypes.PyDLL) -> None:
        # A whole invocation: runs the guest, so it releases the GIL.
        self.invoke = waiting.nimbus_module_invoke
        self.invoke.restype = _VOID  # wasmtime's error, or NULL
        self.invoke.argtypes = (ctypes.POINTER(ModuleCall), ctypes.POINTER(ModuleIO))
        # fd_write's address, for the linker (wasmtime's unchecked callback ABI).
        self.fd_write = ctypes.cast(quick.nimbus_fd_write, _VOID).value
        self.io_free = quick.nimbus_io_free
        self.io_free.restype = None
        self.io_free.argtypes = (ctypes.POINTER(ModuleIO),)
        init = quick.nimbus_module_init
        init.restype = ctypes.c_int
        init.argtypes = (ctypes.POINTER(_Wasmtime),)
        fns = [ctypes.cast(getattr(ffi.dll, name), _VOID).value for name in _WASMTIME]
        layout = _Wasmtime(*fns, ctypes.sizeof(raw.wasmtime_extern_t),
                           raw.wasmtime_extern_t.of.offset, ffi.WASMTIME_EXTERN_FUNC.value,
                           ffi.WASMTIME_EXTERN_MEMORY.value)  # fmt: skip
        if not init(ctypes.byref(layout)):
            raise AttributeError("liblane.so does not fit this wasmtime's extern layout")


class LogHelpers:
    """`_native/logs.c`: a component's log, a pipe its streams write to, drained in C."""

    def __init__(self, quick: ctypes.PyDLL) -> None:
        self.new = quick.nimbus_log_new
        self.new.restype = _VOID
        self.new.argtypes = (ctypes.c_uint64, ctypes.POINTER(ctypes.c_int))
        self.take = quick.nimbus_log_take
        self.take.restype = ctypes.c_uint64
        self.take.argtypes = (_VOID, ctypes.POINTER(_VOID), ctypes.POINTER(ctypes.c_uint64))
        self.close = quick.nimbus_log_close
        self.close.restype = None
        self.close.argtypes = (_VOID,)


def module_helpers() -> ModuleHelpers | None:
    lib = library()
    return lib.modules if lib is not None else None


def log_helpers() -> LogHelpers | None:
    lib = library()
    return lib.logs if lib is not None else None


_library: list[Library | None] = []


def library() -> Library | None:
    if not _library:
        try:
            _library.append(Library(_PATH) if _PATH.is_file() else None)
        except OSError:  # built for another machine: the Python threads serve
            _library.append(None)
    return _library[0]

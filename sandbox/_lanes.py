"""Native lanes (`_native/lane.c`): a guest call on a native thread, waited for with a
timeout, with no Python on the guest's side. `None` from `library()` when the helper
is not built (scripts/install.sh builds it): guarded Python threads serve instead."""

from __future__ import annotations

import ctypes
from pathlib import Path

from wasmtime import _ffi as ffi

_PATH = Path(__file__).with_name("_native") / "liblane.so"
_VOID = ctypes.c_void_p


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


_library: list[Library | None] = []


def library() -> Library | None:
    if not _library:
        try:
            _library.append(Library(_PATH) if _PATH.is_file() else None)
        except OSError:  # built for another machine: the Python threads serve
            _library.append(None)
    return _library[0]

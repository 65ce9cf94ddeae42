"""A component's log: its stdout and stderr, capped, and every write of the guest succeeds.

A component's `wasi:cli/stdout` and `stderr` are wasmtime's own streams, which write
to a file they open by path, synchronously and in full. Both open the write end of one
pipe (`/proc/self/fd/N`), so the log keeps the order of the writes, and a drainer thread
(one per process) empties the pipe as bytes arrive: the first `LOG_LIMIT_BYTES` are kept
and the rest is read and dropped, as a command module's log is (`_wasi.py`), with the
same truncation note. A log flood costs the guest its log's tail and never its call
(Lambda and Workers cut logs too, and neither fails the call for it), and never more
than the cap of memory; nothing touches disk. `take` drains the pipe itself first: what
the guest wrote before its call returned is in the log.

The drainer is C (`_native/logs.c`) when the native helper is built: no Python runs
for a write. Without it a Python thread drains.

NOTE(sandbox): the streams were memfds sealed at the cap: a write past the seal failed
(EPERM), the guest saw EIO, and Python's `print` raised "OSError: [Errno 29] I/O error"
out of the function. wasmtime's custom output callback lets writes succeed, but through
an 8 KiB async buffer: writes came back short, and the Python runtime's unbuffered
streams lost the rest of any longer line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import threading

from . import _lanes
from ._outcome import truncation_note
from ._types import LOG_LIMIT_BYTES

_VOID = ctypes.c_void_p
_CHUNK = 1 << 16


class _NativeLog:
    """The log in C; its drainer frees it after `close`."""

    def __init__(self, helpers: _lanes.LogHelpers, cap: int) -> None:
        write_fd = ctypes.c_int(-1)
        self._c = helpers
        self._ptr = helpers.new(cap, ctypes.byref(write_fd))
        if not self._ptr:
            raise OSError("no pipe or drainer for a component's log")
        self.write_fd = write_fd.value

    def read(self, start: int) -> tuple[bytes, int]:
        """(the bytes kept from `start` on, the bytes dropped in all)."""
        data, dropped = _VOID(), ctypes.c_uint64()
        end = self._c.take(self._ptr, ctypes.byref(data), ctypes.byref(dropped))
        kept = ctypes.string_at(data.value + start, end - start) if end > start else b""
        return kept, dropped.value

    def close(self) -> None:
        self._c.close(self._ptr)


class _PythonLog:
    """The same log without the native helper: a Python thread drains it."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._kept = bytearray()
        self._dropped = 0
        self._lock = threading.Lock()
        self.rfd, self.write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.rfd, False)
        self._drainer = _python_drainer()
        self._drainer.add(self)

    def drain(self) -> bool:
        """Read what the pipe holds now; False at end of file (no writer left)."""
        with self._lock:
            while self.rfd >= 0:
                try:
                    chunk = os.read(self.rfd, _CHUNK)
                except BlockingIOError:
                    break
                if not chunk:
                    return False
                room = max(0, self._cap - len(self._kept))
                self._kept += chunk[:room]
                self._dropped += max(0, len(chunk) - room)
            return True

    def read(self, start: int) -> tuple[bytes, int]:
        self.drain()
        with self._lock:
            return bytes(self._kept[start:]), self._dropped

    def close(self) -> None:
        with self._lock:
            self._drainer.remove(self.rfd, self)
            os.close(self.rfd)
            self.rfd = -1


class _PythonDrainer:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self._epoll = select.epoll()
        self._logs: dict[int, _PythonLog] = {}
        threading.Thread(target=self._run, name="nimbus-log-drainer", daemon=True).start()

    def add(self, log: _PythonLog) -> None:
        self._logs[log.rfd] = log
        self._epoll.register(log.rfd, select.EPOLLIN)

    def remove(self, fd: int, log: _PythonLog) -> None:
        if self._logs.get(fd) is log:
            del self._logs[fd]
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)

    def _run(self) -> None:
        while True:
            for fd, _ in self._epoll.poll():
                log = self._logs.get(fd)  # a reused fd: that log's, drained all the same
                if log is not None and not log.drain():
                    self.remove(fd, log)  # every writer gone


_drainer: list[_PythonDrainer] = []


def _python_drainer() -> _PythonDrainer:
    if not _drainer or _drainer[0].pid != os.getpid():  # none yet, or a forked child's
        _drainer[:] = [_PythonDrainer()]
    return _drainer[0]


class ComponentLogs:
    """stdout and stderr of one component instance: the function's log."""

    def __init__(self, cap: int = LOG_LIMIT_BYTES) -> None:
        self._pid = os.getpid()
        self._cap = cap
        self._seen = 0  # bytes already handed out (reused instances)
        self._dropped = 0
        # NOTE(sandbox): a caller reads the log of a guest blocked past its deadline while
        # the guest's thread may end and close it.
        self._lock = threading.Lock()
        helpers = _lanes.log_helpers()
        log: _NativeLog | _PythonLog | None = None
        if helpers is not None:
            with contextlib.suppress(OSError):  # no drainer thread: Python's serves
                log = _NativeLog(helpers, cap)
        self._log = log if log is not None else _PythonLog(cap)

    def attach(self, wasi) -> None:
        """Before the config goes to its store; the streams open the pipe here."""
        write_fd, path = self._log.write_fd, f"/proc/self/fd/{self._log.write_fd}"
        try:
            wasi.stdout_file = path
            wasi.stderr_file = path
        finally:
            os.close(write_fd)  # the streams' own descriptors keep the pipe open

    def take(self) -> bytes:
        """The log written since the last `take`, capped, with a note if cut."""
        with self._lock:
            if self._log is None:
                return b""
            log, dropped = self._log.read(self._seen)
            self._seen += len(log)
            cut, self._dropped = dropped - self._dropped, dropped
        return log + truncation_note(cut) if cut else log

    @property
    def nearly_full(self) -> bool:
        return self._seen > self._cap // 2

    def close(self) -> None:
        """After the store (the streams' writers) is closed."""
        with self._lock:
            log, self._log = self._log, None
        # A forked child leaves its parent's log alone (its drainer is the parent's).
        if log is not None and self._pid == os.getpid():
            log.close()

    def __del__(self) -> None:
        if getattr(self, "_log", None) is not None:
            self.close()

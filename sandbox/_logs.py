"""Capped log files for components: the kernel refuses bytes past the cap.

A component's `wasi:cli/stdout` and `stderr` are wasmtime's own streams,
which only write to a file path (or to a Python callback, which runs on a
tokio thread, is slower and aborted the interpreter at exit after a trap).
Each stream gets a memfd: wasmtime opens it through `/proc/self/fd/N`, then
the memfd is sized to the cap plus one page and sealed against growing
(F_SEAL_GROW). Writes past the end fail with EPERM inside the guest, so a
log flood never takes more than the cap of memory, and nothing touches disk
or /dev/shm. Unwritten pages of a memfd are holes that read as zeros, so
the log is the file with trailing NULs removed; anything written past the
cap means the guest wanted to log more, and the truncation note says so.
"""

from __future__ import annotations

import ctypes
import fcntl
import os

from ._outcome import truncation_note
from ._types import LOG_LIMIT_BYTES

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# PERF(sandbox): libc's lseek with the GIL kept. `os.lseek` releases the GIL around
# the syscall, and with a worker's threads queued for it, taking it back after a
# microsecond's syscall waits for another thread's turn (twice per call: both logs).
_libc = ctypes.PyDLL(None, use_errno=True)
_lseek = _libc.lseek
_lseek.argtypes = (ctypes.c_int, ctypes.c_long, ctypes.c_int)
_lseek.restype = ctypes.c_long


def _first_hole(fd: int) -> int:
    end = _lseek(fd, 0, os.SEEK_HOLE)
    if end < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return end


class CappedLogFile:
    def __init__(self, name: str, cap: int = LOG_LIMIT_BYTES) -> None:
        self.cap = cap
        self.fd = -1
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        self.path = f"/proc/self/fd/{self.fd}"

    def seal(self) -> None:
        """Call after wasmtime has opened `path` (it truncates it on open)."""
        os.ftruncate(self.fd, self.cap + _PAGE)
        fcntl.fcntl(
            self.fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL
        )

    def read(self) -> tuple[bytes, bool]:
        """(log, truncated)."""
        # PERF(sandbox): the written bytes end in the first hole (writes are
        # sequential); only the last page can end in unwritten zeros.
        end = _first_hole(self.fd)
        if end == 0:  # nothing written (most calls): no read
            return b"", False
        data = os.pread(self.fd, end, 0)
        tail = max(0, len(data) - _PAGE)
        data = data[:tail] + data[tail:].rstrip(b"\0")
        if len(data) > self.cap:
            return data[: self.cap], True
        return data, False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    __del__ = close


class ComponentLogs:
    """stdout and stderr of one component instance; both are the function's log."""

    def __init__(self) -> None:
        self.stdout = CappedLogFile("nimbus-stdout")
        self.stderr = CappedLogFile("nimbus-stderr")
        self._read = (0, 0)  # bytes of each already handed out (reused instances)

    def attach(self, wasi) -> None:
        wasi.stdout_file = self.stdout.path
        wasi.stderr_file = self.stderr.path
        self.stdout.seal()
        self.stderr.seal()

    def take(self) -> bytes:
        """The log written since the last `take`, capped, with a note if cut."""
        out, out_cut = self.stdout.read()
        err, err_cut = self.stderr.read()
        seen_out, seen_err = self._read
        self._read = (len(out), len(err))
        log = out[seen_out:] + err[seen_err:]
        cut = out_cut or err_cut
        if len(log) > LOG_LIMIT_BYTES:
            log, cut = log[:LOG_LIMIT_BYTES], True
        return log + truncation_note(None) if cut else log

    @property
    def nearly_full(self) -> bool:
        return max(self._read) > self.stdout.cap // 2

    def close(self) -> None:
        self.stdout.close()
        self.stderr.close()

"""A size bound on what a build writes: its folder is a tmpfs of `max_mb` megabytes.

Every file a build writes (sources, the warm cache copy, objects, the artifact) is
in one folder, which the jail binds read-write. Mounting a size-limited tmpfs
there bounds the whole build, across all its compiler runs, with a plain ENOSPC
at the limit, and leaves nothing on the disk once the build is over.
NOTE(scratch): tmpfs is memory (or swap): a build holds what it wrote in RAM
until it ends; pages not written cost nothing, so the bound is a ceiling, not a
reservation. Mounting needs CAP_SYS_ADMIN (the server as root); without it the
folder stays on the disk, with only the per-file limit, and a warning says so once.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ._base import BuildFailed

log = logging.getLogger(__name__)

MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2
MiB = 1 << 20
_FULL_MARGIN = 2 * MiB  # less free than this after a failed run: the space was used up
_ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"

_SOURCE = "nimbus-build-"  # + the mounting process's pid, in /proc/self/mountinfo
_libc = ctypes.CDLL(None, use_errno=True)
_mounted: dict[Path, int] = {}  # bounded folder -> its size in MB
_released: set[Path] = set()  # folders `release` was called for: nothing is mounted in them
_lock = threading.Lock()
_unavailable = False


def _mount_tmpfs(folder: Path, max_mb: int) -> bool:
    global _unavailable
    if _unavailable:
        return False
    options = f"size={max_mb}m,mode=0700".encode()
    flags = MS_NOSUID | MS_NODEV
    source = f"{_SOURCE}{os.getpid()}".encode()  # who mounted it: see release_orphans
    if _libc.mount(source, str(folder).encode(), b"tmpfs", flags, options) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EPERM, errno.EACCES, errno.ENOSYS):
        _unavailable = True
        log.warning(
            "builds run without a disk bound (BUILD_MAX_DISK_MB): mounting a tmpfs "
            "needs CAP_SYS_ADMIN (%s)",
            os.strerror(err),
        )
        return False
    raise OSError(err, f"mount tmpfs on {folder}: {os.strerror(err)}")


@contextlib.contextmanager
def bounded_folder(folder: Path, max_mb: int) -> Iterator[bool]:
    """Make the empty `folder` a tmpfs of `max_mb` MB for the block (0: no bound).

    Yields whether the bound holds. The tmpfs and all in it are gone afterwards.
    """
    folder = Path(folder).resolve()
    if max_mb <= 0:
        yield False
        return
    with _lock:  # NOTE: mounted and noted at once, or `release` could miss it
        if any(folder.is_relative_to(parent) for parent in _released):
            raise BuildFailed("the build was abandoned: the server is stopping")
        if not _mount_tmpfs(folder, max_mb):
            bounded = False
        else:
            bounded, _mounted[folder] = True, max_mb
    if not bounded:
        yield False
        return
    try:
        yield True
    finally:
        with _lock:
            ours = _mounted.pop(folder, None) is not None  # else `release` unmounted it
        if ours:
            _unmount(folder)


def release(parent: Path) -> list[Path]:
    """Unmount now the bounded folders at or under `parent`, whose builds still run.

    A stopping server abandons its builds (after ending their jails): their
    `bounded_folder` blocks may not end before the process does, and a tmpfs outlives
    the process that mounted it, holding what the build wrote in memory. Returns the
    folders released; each block's own unmount is then skipped.
    """
    parent = Path(parent).resolve()
    with _lock:
        _released.add(parent)  # a build about to mount in it does not
        found = [folder for folder in _mounted if folder.is_relative_to(parent)]
        for folder in found:
            del _mounted[folder]
    for folder in found:
        _unmount(folder)
    return found


def _unmount(folder: Path) -> None:
    # NOTE(scratch): detached, so a file still open in it (a compiler being killed, the
    # build thread) cannot keep it mounted; its memory is freed when the last one closes.
    if _libc.umount2(str(folder).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        log.warning("unmount of build folder %s failed: %s", folder, os.strerror(err))


def out_of_space(path: Path, output: list[str]) -> int | None:
    """The bound in MB when `path` is in a bounded folder that was filled, else None.

    Filled: (nearly) full now, or the output names ENOSPC (a compiler deletes the
    output it could not finish, so the space is often free again by now).
    """
    path = Path(path).resolve()
    with _lock:
        bound = next((mb for f, mb in _mounted.items() if path.is_relative_to(f)), None)
    if bound is None:
        return None
    if any(_ENOSPC in line for line in output):
        return bound
    stat = os.statvfs(path)
    return bound if stat.f_bavail * stat.f_frsize < _FULL_MARGIN else None


def release_orphans(parent: Path) -> list[Path]:
    """Unmount bounded folders under `parent` whose server process is gone.

    A worker killed mid-build (kill -9, OOM) leaves its tmpfs mounted, holding what
    the build wrote in memory; the next worker to start lets go of it. Returns the
    folders released.
    """
    parent = Path(parent).resolve()
    released = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        source = fields[fields.index("-") + 2]
        point = Path(fields[4].replace("\\040", " "))
        if not source.startswith(_SOURCE) or not point.is_relative_to(parent):
            continue
        pid = int(source.removeprefix(_SOURCE))
        if pid == os.getpid() or _alive(pid):
            continue
        if _libc.umount2(str(point).encode(), MNT_DETACH) == 0:
            released.append(point)
    if released:
        log.warning("released %d build folder(s) of dead workers: %s", len(released), released)
    return released


def _alive(pid: int) -> bool:
    """NOTE(scratch): a zombie is dead: a server killed with -9 (master and workers) has
    workers nobody reaps at once, and the next server, started meanwhile, left their
    folders mounted (seen in tests/e2e/test_durability.py's kill -9 test)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")

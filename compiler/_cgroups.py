"""A process bound for builds: each jailed run gets a cgroup of its own with `pids.max`.

RLIMIT_NPROC cannot do this job: it counts every process of a user, and a server
running as root (as in the platform's container) is exempt from it. A pids cgroup
counts exactly the build's processes and threads, whatever their uid, and holds
for bubblewrap's whole process tree, which is placed in it before it starts.

Where builds' cgroups live is found once: under the server's own cgroup in the
cgroup v1 `pids` hierarchy, or under its cgroup v2 cgroup when that cgroup can
give the `pids` controller to children (the root of a cgroup namespace, or a
delegated subtree). Without either, a server that is not root falls back to
RLIMIT_NPROC (`nproc_limit`), which a user namespace counts per namespace and
again for the server's uid as a whole; as root nothing bounds the processes,
and a warning says so once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_FS = Path("/sys/fs/cgroup")
PARENT = "nimbus-builds"
CLOSE_TIMEOUT_SEC = 5
_ENTER = 'echo $$ > "$0" && exec "$@"'  # the shell moves itself in, then becomes the jail


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path: in the v1 hierarchy of `controller`, or v2 for ''."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers.split(",") == [controller] or (controller == "" and controllers == ""):
            return path
    return None


def _candidates() -> list[Path]:
    if (CGROUP_FS / "cgroup.controllers").exists():  # cgroup v2 only
        own = _own_cgroup("")
        return [] if own is None else [CGROUP_FS / own.lstrip("/") / PARENT]
    v1 = CGROUP_FS / "pids"
    own = _own_cgroup("pids")
    return [] if own is None or not v1.is_dir() else [v1 / own.lstrip("/") / PARENT]


def _enable_pids(folder: Path) -> None:
    """cgroup v2: children of `folder` get pids.max only once it hands them the controller."""
    control = folder / "cgroup.subtree_control"
    if control.exists() and "pids" not in control.read_text().split():
        control.write_text("+pids")


@functools.cache
def builds_parent() -> Path | None:
    """The cgroup under which each build's cgroup is made, or None (no process bound)."""
    reasons = []
    for parent in _candidates():
        try:
            _enable_pids(parent.parent)
            parent.mkdir(exist_ok=True)
            _enable_pids(parent)
            probe = parent / f"probe-{uuid.uuid4().hex[:8]}"
            probe.mkdir()
            usable = (probe / "pids.max").exists()
            probe.rmdir()
            if usable:
                return parent
            reasons.append(f"{parent}: no pids controller")
        except OSError as exc:
            reasons.append(f"{parent}: {exc.strerror or exc}")
    log.warning(
        "builds run %s (BUILD_MAX_PIDS): no pids cgroup can be made here (%s); "
        "give the server a delegated cgroup or run it as root",
        "without a process bound" if os.geteuid() == 0 else "with RLIMIT_NPROC only",
        "; ".join(reasons) or "no cgroup file system",
    )
    return None


def nproc_limit(max_pids: int) -> int | None:
    """RLIMIT_NPROC for a jail when no cgroup can hold it and the server is not root.

    The kernel checks a fork in the jail's user namespace against the count there,
    and at the top against every task of the server's uid (its own threads, other
    builds): so the limit is `max_pids` above what that uid runs now. Root is exempt.
    """
    uid = os.geteuid()
    if max_pids <= 0 or uid == 0:
        return None
    return max_pids + _tasks_of(uid)


def _tasks_of(uid: int) -> int:
    tasks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":", 1) for line in Path(entry.path, "status").read_text().splitlines()
            )
            if int(fields["Uid"].split()[0]) == uid:
                tasks += int(fields["Threads"])
    return tasks


class PidsBound:
    """One build's cgroup: `wrap` starts a command inside it; `close` empties and removes it."""

    def __init__(self, parent: Path, max_pids: int) -> None:
        self.max_pids = max_pids
        self.path = parent / f"build-{uuid.uuid4().hex[:12]}"
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(max_pids))

    @classmethod
    def make(cls, max_pids: int) -> PidsBound | None:
        """A bound of `max_pids` processes, or None when it is off (0) or unavailable."""
        parent = builds_parent() if max_pids > 0 else None
        return None if parent is None else cls(parent, max_pids)

    def wrap(self, argv: list[str]) -> list[str]:
        return ["/bin/sh", "-c", _ENTER, str(self.path / "cgroup.procs"), *argv]

    def reached(self) -> bool:
        """Did a fork fail at the bound?"""
        with contextlib.suppress(OSError):
            for line in (self.path / "pids.events").read_text().splitlines():
                name, _, count = line.partition(" ")
                if name == "max" and int(count) > 0:
                    return True
        return False

    def peak(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.path / "pids.peak").read_text())
        return None

    def close(self) -> None:
        """Remove the cgroup, killing whatever is left inside (the jail's PID
        namespace normally took it down).

        PERF(jail): bubblewrap exits on its inner init's exit status without
        waiting for it, so that init is often still exiting (~1 ms) when the
        first rmdir comes: retry after 1, 2, 4 … ms, and kill only what is
        still there after ~60 ms (a fixed 100 ms sleep cost half of all builds
        0.1 s)."""
        delay, deadline = 0.001, time.monotonic() + CLOSE_TIMEOUT_SEC
        while time.monotonic() < deadline:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                if delay > 0.05:
                    for pid in self._pids():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                time.sleep(delay)
                delay = min(2 * delay, 0.1)
        log.warning("build cgroup %s could not be removed", self.path)

    def _pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        return []

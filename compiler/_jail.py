"""Sandboxed builds: a compiler runs under bubblewrap, seeing only what it needs.

Compilers read files and expand macros (Rust's run code), so a build is
untrusted work. `run_jailed` runs one command with:

- no network (its own empty network namespace), no IPC, its own PID and UTS
  namespaces; a user namespace with uid 1000 and no capabilities, and no
  further user namespaces (`--disable-userns`);
- an empty environment except the `env` it is given;
- visible file system: read-only `/usr` (with the merged-/usr links `/bin`,
  `/lib`, `/lib64`, `/sbin`), the `ro_binds` read-only at their own paths
  (toolchains), the `ro_mounts` read-only at the paths they are given (the
  platform's glue, so messages never name the server's folders), `workdir`
  read-write at its own path, a fresh `/proc` and a minimal `/dev` (null,
  zero, random, urandom, tty), `/tmp` as a small tmpfs. Nothing else: no
  `/etc`, no `/home`, no `/root`, not the repository, not the data folder;
- a timeout: the whole process group is killed (`--die-with-parent` and the
  PID namespace take everything inside down with bubblewrap) and the build
  fails with "build timed out";
- a memory limit: RLIMIT_DATA of `memory_mb` per process (set by `prlimit`
  before bubblewrap starts). NOTE(jail): not RLIMIT_AS, which counts address
  space a process only reserves: Go's runtime reserves ~600 MB before it
  allocates anything, so `go build` dies at start under an AS limit below that,
  while RLIMIT_DATA (Linux ≥ 4.7) counts private writable memory actually
  mapped, which is what a hungry compiler grows. It is per process, so a build
  running N compiler processes may use N times the limit; a cgroup would
  bound the total but needs a delegated cgroup tree the platform may not have;
- a process bound: `max_pids` processes and threads in all, counted by a pids
  cgroup of its own (`_cgroups`; RLIMIT_NPROC when the server is neither root
  nor given a cgroup); a fork beyond it fails with EAGAIN, and a build that
  then fails says it reached the bound;
- a size bound: the writable `workdir` is normally a size-limited tmpfs
  (`_scratch.bounded_folder`, made by the build pipeline); a build that fails
  with its space used up says so;
- output (stdout and stderr merged) streamed line by line into the build log,
  bounded (`LOG_LINES` lines, `LOG_LINE_CHARS` characters a line), and the
  last `TAIL_LINES` lines handed back in `output` for the build's message;
- an end on demand: `end_jails(folder)` kills every jail running in `folder` (a
  stopping server abandons its builds: nothing of theirs may outlive it).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import threading
from collections import deque
from pathlib import Path

from ._base import BuildFailed, BuildLog
from ._cgroups import PidsBound, nproc_limit
from ._scratch import out_of_space

LOG_LINES = 2000
LOG_LINE_CHARS = 2000
_READ_BYTES = 4 * LOG_LINE_CHARS  # a line's characters are at most 4 bytes each (UTF-8)
TAIL_LINES = 200
TMP_MB = 256  # the jail's /tmp (RAM-backed, so small)
FILE_SIZE_MB = 1024  # largest file a build may write
JAIL_UID = 1000
_EAGAIN = os.strerror(errno.EAGAIN)  # a fork at the bound: "Resource temporarily unavailable"
_jails: dict[int, Path] = {}  # a running jail's process group → its workdir (for end_jails)
_ended: set[Path] = set()  # folders end_jails was called for: no jail starts in them
_jails_lock = threading.Lock()

_CANDIDATES = {
    "bwrap": ("/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"),
    "prlimit": ("/usr/bin/prlimit", "/bin/prlimit", "/usr/local/bin/prlimit"),
}
_SYSTEM_LINKS = ("/bin", "/lib", "/lib64", "/sbin")
_MISSING = {
    "bwrap": "bubblewrap, which runs builds without network or host files",
    "prlimit": "prlimit (util-linux), which sets a build's memory limit",
}


def _tool(name: str) -> str:
    for path in _CANDIDATES[name]:
        if os.access(path, os.X_OK):
            return path
    raise BuildFailed(
        f"this server cannot run builds: {_MISSING[name]} is not installed "
        f"(`apt-get install bubblewrap util-linux`, or `make install`)"
    )


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for path in _SYSTEM_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def jail_command(
    cmd: list[str],
    *,
    workdir: Path,
    ro_binds: list[Path],
    env: dict[str, str],
    memory_mb: int,
    nproc: int | None = None,
    ro_mounts: dict[str, Path] | None = None,
) -> list[str]:
    """The full command line: prlimit, then bubblewrap, then `cmd`."""
    workdir = Path(workdir).resolve()
    limits = [
        _tool("prlimit"),
        f"--data={memory_mb << 20}",
        f"--fsize={FILE_SIZE_MB << 20}",
        "--core=0",
        *([f"--nproc={nproc}"] if nproc is not None else []),
        "--",
    ]
    jail = [
        _tool("bwrap"),
        "--unshare-all",
        "--unshare-user",
        "--uid", str(JAIL_UID), "--gid", str(JAIL_UID),
        "--disable-userns",
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",
        "--hostname", "nimbus-build",
        *_system_mounts(),
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(TMP_MB << 20), "--tmpfs", "/tmp",
    ]  # fmt: skip
    for path in ro_binds:
        real = Path(path).resolve()
        jail += ["--ro-bind", str(real), str(real)]
    for inside, path in (ro_mounts or {}).items():
        jail += ["--ro-bind", str(Path(path).resolve()), inside]
    jail += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir), "--clearenv"]
    for name, value in env.items():
        jail += ["--setenv", name, value]
    return [*limits, *jail, "--", *cmd]


class _Output:
    """Reads the jail's merged output into the build log, bounded."""

    def __init__(self, stream, log: BuildLog, tail: deque[str]) -> None:
        self.stream = stream
        self.log = log
        self.tail = tail
        self.logged = 0
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name="build-output", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        # NOTE(jail): read in bounded pieces: a line without end (a compiler's own, or a
        # macro's expansion) must not be held whole in the server's memory to be cut.
        cutting = False  # the rest of a line already cut: skip to its end
        while raw := self.stream.readline(_READ_BYTES):
            ended = raw.endswith(b"\n")
            if cutting:
                cutting = not ended
                continue
            cutting = not ended and len(raw) == _READ_BYTES
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            if len(line) > LOG_LINE_CHARS or cutting:
                line = line[:LOG_LINE_CHARS] + " [line cut]"
            self.tail.append(line)
            if self.logged < LOG_LINES:
                self.log.write(line)
                self.logged += 1
            else:
                self.dropped += 1

    def finish(self) -> None:
        self.thread.join(timeout=5)
        if self.dropped:
            self.log.write(f"[{self.dropped} more lines of build output not shown]")


def run_jailed(
    cmd: list[str],
    *,
    workdir: Path,
    ro_binds: list[Path],
    env: dict[str, str],
    timeout: float,
    memory_mb: int,
    log: BuildLog,
    output: list[str] | None = None,
    max_pids: int = 0,
    ro_mounts: dict[str, Path] | None = None,
) -> int:
    """Run `cmd` in the build jail; returns its exit code.

    `output`, when given, receives the last `TAIL_LINES` lines of output (for
    the message of a failed build). Raises `BuildFailed("build timed out …")`
    at the timeout, after the whole jail was killed, and a `BuildFailed` naming
    the bound when the command failed after reaching `max_pids` (0: no bound)
    or filling its bounded `workdir`.
    """
    bound = PidsBound.make(max_pids)
    nproc = None if bound is not None else nproc_limit(max_pids)
    argv = jail_command(
        cmd,
        workdir=workdir,
        ro_binds=ro_binds,
        env=env,
        memory_mb=memory_mb,
        nproc=nproc,
        ro_mounts=ro_mounts,
    )
    lines = output if output is not None else []
    try:
        code = _run(bound.wrap(argv) if bound else argv, timeout, log, lines, Path(workdir))
        if code != 0:
            _explain_bounds(bound, nproc is not None, max_pids, Path(workdir), lines, log)
        return code
    finally:
        if bound is not None:
            bound.close()


def _explain_bounds(
    bound: PidsBound | None,
    by_nproc: bool,
    max_pids: int,
    workdir: Path,
    lines: list[str],
    log: BuildLog,
) -> None:
    """A failed command that ran into a bound fails the build with that bound's name."""
    # Under RLIMIT_NPROC only the failed fork's EAGAIN in the output tells.
    if (bound is not None and bound.reached()) or (by_nproc and any(_EAGAIN in x for x in lines)):
        message = (
            f"the build reached its limit of {max_pids} processes and threads "
            f"(BUILD_MAX_PIDS); a fork beyond it failed"
        )
        log.write(message)
        raise BuildFailed(message)
    full = out_of_space(workdir, lines)
    if full is not None:
        message = f"the build used up its {full} MB of disk space (BUILD_MAX_DISK_MB)"
        log.write(message)
        raise BuildFailed(message)


def end_jails(folder: Path) -> int:
    """Kill every jail whose workdir is `folder` or in it, with all its processes; the
    number killed. Its `run_jailed` returns (a killed command's exit code) once it is gone.

    A server stopping mid-build hands the build back and must leave nothing of it
    running: `--die-with-parent` ends a jail only when the thread that started it ends,
    and a worker's last moments may be longer than its builds' should be.
    """
    folder = Path(folder).resolve()
    with _jails_lock:
        _ended.add(folder)  # a jail about to start in it does not
        groups = [pid for pid, workdir in _jails.items() if workdir.is_relative_to(folder)]
    for pid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return len(groups)


def _run(argv: list[str], timeout: float, log: BuildLog, output: list[str], workdir: Path) -> int:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    workdir = workdir.resolve()
    with _jails_lock:  # NOTE: started and noted at once, or end_jails could miss it
        if any(workdir.is_relative_to(ended) for ended in _ended):
            raise BuildFailed("the build was abandoned: the server is stopping")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={},
            start_new_session=True,  # its own process group, killed as one
        )
        _jails[proc.pid] = workdir
    reader = _Output(proc.stdout, log, tail)
    try:
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            reader.finish()
            raise BuildFailed(f"build timed out after {timeout:g} s") from None
        reader.finish()
    finally:
        if proc.poll() is None:  # an exception (e.g. the server stopping): leave nothing behind
            _kill(proc)
        with _jails_lock:
            _jails.pop(proc.pid, None)
        proc.stdout.close()
        output[:] = list(tail)
    return code


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)

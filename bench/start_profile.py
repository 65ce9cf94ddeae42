"""Where a server's start goes: py-spy over a process from exec to its first 200.

The server's command runs under `py-spy record --subprocesses`, so the master
and every gunicorn worker are sampled from their first instruction. Once the
caller's request is answered the server (py-spy's child) is stopped by PID and
py-spy writes its folded stacks; the note names the frames of our own code
that held the most busy samples, in the workers and in the master.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from .profile import _frames, _short, busy_only, py_spy, read_folded
from .servers import REPO, ServerProcess

OUR_PACKAGES = ("gateway", "sandbox", "store", "compiler", "cli")
ENTRY_POINTS = ("serve (",)  # `nimbus serve` itself: under every sample, says nothing


def profiled(server: ServerProcess, out: Path) -> ServerProcess:
    """`server`'s command under py-spy, as a server of its own on the same port."""
    cmd = [py_spy(), "record", "--subprocesses", "--rate", "200", "--format", "raw",
           "--full-filenames", "--nolineno", "--output", str(out), "--", *server.cmd]  # fmt: skip
    return ServerProcess(f"{server.name}-py-spy", cmd, server.env, server.log_path.parent)


def stop_profiled(spy: ServerProcess) -> None:
    """Stop the profiled server (py-spy's child) by PID; py-spy then writes and exits."""
    for pid in spy.worker_pids():
        os.kill(pid, signal.SIGTERM)
    try:
        assert spy.proc is not None
        spy.proc.wait(60)
    except subprocess.TimeoutExpired:
        spy.stop()


def _ours(frame: str) -> bool:
    where = frame.partition(" (")[2].removeprefix(f"{REPO}/")
    return where.startswith(tuple(f"{package}/" for package in OUR_PACKAGES))


def summary(out: Path, top: int = 6) -> str:
    """Our code's frames by inclusive busy samples, workers and master apart."""
    busy, _ = busy_only(read_folded(out))
    parts: dict[str, Counter] = {"workers": Counter(), "master": Counter()}
    totals: Counter = Counter()
    for stack, n in busy.items():
        # py-spy roots a worker's stacks in two `process` frames: the master's, then its own.
        roots = sum(frame.startswith("process ") for frame in stack.split(";"))
        role = "workers" if roots > 1 else "master"
        totals[role] += n
        ours = {_short(f) for f in _frames(stack) if _ours(f)}
        for frame in {f for f in ours if not f.startswith(ENTRY_POINTS)}:
            parts[role][frame] += n
    lines = []
    for role, counter in parts.items():
        if totals[role]:
            top_frames = ", ".join(
                f"{100 * n / totals[role]:.0f}% {frame}" for frame, n in counter.most_common(top)
            )
            lines.append(f"{role} ({totals[role]} busy samples at 200 Hz): {top_frames}")
    return "; ".join(lines)


def profile_note(
    server: ServerProcess, out: Path, time_start: Callable[[ServerProcess], float]
) -> str:
    """A report note: one more start of `server` under py-spy, timed by `time_start`."""
    spy = profiled(server, out)
    try:
        ms = time_start(spy)
    finally:
        stop_profiled(spy)
    return f"py-spy over one more start ({ms:.0f} ms under the profiler): {summary(out)}"

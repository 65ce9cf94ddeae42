"""Where the time goes: py-spy on the gunicorn workers while wrk loads them.

`python -m bench --profile` (and a full run whose throughput target is
missed) samples every worker of a loaded `nimbus serve` and of the bare echo,
and writes to bench/results/:
- `profile-<name>.folded` — collapsed stacks (speedscope and flamegraph.pl read them),
- `profile-nimbus.svg` — a flame graph of the Nimbus workers,
- `profile.md` — the busiest functions and the time by package, both servers side by side.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path

from . import wrk
from .context import BenchContext
from .servers import BIN, REPO, ServerProcess
from .wasm import EVENT

PROFILED_COMPARISON = "http-invoke"


class ProfilerMissing(RuntimeError):
    pass


def py_spy() -> str:
    found = shutil.which("py-spy") or (BIN / "py-spy")
    if not Path(found).exists():
        raise ProfilerMissing("py-spy is not installed: `.venv/bin/pip install py-spy`")
    return str(found)


def record(
    server: ServerProcess, url: str, headers: dict[str, str], out: Path, fmt: str, seconds: float
) -> None:
    """Sample all workers of `server` for `seconds` while wrk keeps 16 connections busy."""
    load_error: list[BaseException] = []

    def load() -> None:
        try:
            wrk.run(url, body=EVENT, headers=headers, connections=16, duration_s=seconds + 3)
        except BaseException as exc:  # reported after the join
            load_error.append(exc)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        cmd = [
            py_spy(),
            "record",
            "--pid",
            str(server.pid),
            "--subprocesses",  # every gunicorn worker under the master we started
            "--duration",
            f"{seconds:g}",
            "--rate",
            "200",
            "--format",
            fmt,
            "--output",
            str(out),
            "--full-filenames",
        ]
        if fmt == "raw":
            cmd.append("--nolineno")
        subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    finally:
        loader.join(seconds + 60)
    if load_error:
        raise load_error[0]


def run(ctx: BenchContext) -> dict[str, str]:
    """Profile both servers under load; returns {comparison key: report path}."""
    seconds = ctx.params.profile_s
    nimbus = ctx.nimbus()
    baseline = ctx.baseline()
    auth = {"Authorization": f"Bearer {nimbus.api_key}"}
    targets = {
        "nimbus": (nimbus, nimbus.invoke_url(ctx.echo_function()), auth),
        "echo": (baseline, baseline.echo_url, auth),
    }
    out_dir = ctx.results_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    stacks: dict[str, Counter] = {}
    for name, (server, url, headers) in targets.items():
        # Imported here: the comparisons (scale-from-zero) import this module.
        from .comparisons.http_invoke import check_echo

        check_echo(url, headers, name)
        folded = out_dir / f"profile-{name}.folded"
        record(server, url, headers, folded, "raw", seconds)
        stacks[name] = read_folded(folded)
    svg = out_dir / "profile-nimbus.svg"
    server, url, headers = targets["nimbus"]
    record(server, url, headers, svg, "flamegraph", seconds)

    summary = out_dir / "profile.md"
    summary.write_text(summarize(stacks, seconds))
    return {PROFILED_COMPARISON: _relative(summary)}


def read_folded(path: Path) -> Counter:
    stacks: Counter = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def _frames(stack: str) -> list[str]:
    # py-spy roots each stack in `process N:"cmdline"` frames (master, then worker).
    return [f for f in stack.split(";") if f and not f.startswith("process ")]


# NOTE: py-spy's idle detection misses threads parked in C-level waits (an idle
# gthread pool thread sits in `_worker` on `work_queue.get`), so these leaves
# count as waiting, not work. Everything else is a busy sample.
WAIT_LEAVES = {"_worker", "select", "wait", "sleep", "_wait_for_tstate_lock", "poll", "accept"}


def is_waiting(frame: str) -> bool:
    func, _, where = frame.partition(" (")
    name = func.rsplit(".", 1)[-1]
    return name in WAIT_LEAVES or (name == "get" and where.endswith("queue.py)"))


def busy_only(stacks: Counter) -> tuple[Counter, int]:
    """The stacks doing work, and how many samples were threads waiting."""
    busy: Counter = Counter()
    waiting = 0
    for stack, n in stacks.items():
        frames = _frames(stack)
        if not frames or is_waiting(frames[-1]):
            waiting += n
        else:
            busy[stack] += n
    return busy, waiting


def _short(frame: str) -> str:
    func, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for prefix in (str(REPO) + "/.venv/", "site-packages/", str(REPO) + "/"):
        if prefix in where:
            where = where.split(prefix, 1)[1]
    if "/lib/python3" in where:
        where = "stdlib:" + where.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return f"{func} ({where})"


def package_of(frame: str) -> str:
    where = frame.partition(" (")[2]
    if "site-packages/" in where:
        return where.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if where.startswith(str(REPO) + "/"):
        return "nimbus:" + where[len(str(REPO)) + 1 :].split("/", 1)[0]
    if "/lib/python3" in where:
        return "stdlib"
    return "other"


def summarize(stacks: dict[str, Counter], seconds: float, top: int = 25) -> str:
    waiting = {}
    for name in list(stacks):
        stacks[name], waiting[name] = busy_only(stacks[name])
    lines = [
        "# Profile: Nimbus invoke vs bare echo under 16 connections",
        "",
        f"py-spy at 200 Hz, {seconds:g} s per server, every gunicorn worker. Shares are of "
        "the busy samples (threads parked in a wait are left out: "
        + ", ".join(f"{n} {waiting[n]}" for n in stacks)
        + " samples). Time inside wasmtime's native code shows under the Python frame "
        "that called it. The folded stacks are beside this file (speedscope reads them); "
        "`profile-nimbus.svg` is the Nimbus flame graph (idle threads included).",
        "",
        "## Busy time by package (where the leaf frame is)",
        "",
        "| package | " + " | ".join(stacks) + " |",
        "|---|" + "---|" * len(stacks),
    ]
    by_package = {}
    totals = {}
    for name, counter in stacks.items():
        totals[name] = sum(counter.values()) or 1
        pkg: Counter = Counter()
        for stack, n in counter.items():
            frames = _frames(stack)
            pkg[package_of(frames[-1]) if frames else "other"] += n
        by_package[name] = pkg
    packages = sorted(
        {p for c in by_package.values() for p in c},
        key=lambda p: -max(by_package[n][p] / totals[n] for n in stacks),
    )
    for p in packages:
        cells = [f"{100 * by_package[n][p] / totals[n]:.1f}%" for n in stacks]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    for name, counter in stacks.items():
        self_time: Counter = Counter()
        inclusive: Counter = Counter()
        for stack, n in counter.items():
            frames = _frames(stack)
            if not frames:
                continue
            self_time[_short(frames[-1])] += n
            for frame in {_short(f) for f in frames}:
                inclusive[frame] += n
        total = totals[name]
        lines += ["", f"## {name}: {total} busy samples", "", "### Self time (top)", ""]
        lines += [f"- {100 * n / total:5.1f}%  {f}" for f, n in self_time.most_common(top)]
        lines += ["", "### Inclusive time (top)", ""]
        lines += [f"- {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)

"""Python and JavaScript on their shared runtimes (issue 6), next to spawning python3/node.

Deployed through the real server: a one-line hello without dependencies and
a function with one dependency (Python: a pure-Python requirement; JavaScript:
the invoice example with its npm dependency), every repetition with a changed
comment so the build cache cannot answer. Rows per language:

- create → ready (`?wait=true`), without and with the dependency (warm pip/npm
  caches; the dependency row's reference is the package manager alone
  installing the same dependency into an empty folder);
- stored bytes: everything the version added to the store (object files new
  or grown during the deploy, invocation logs and stats excluded), next to
  the function's own source bytes;
- first invoke on a fresh worker in-process and the per-invocation cost with a
  fresh instance (`bench.fresh_worker function`, as in `runtime-cold-start`),
  next to spawning `python3`/`node` on the same handler once per call.

The compiled languages' create → ready rows come from `runtime-cold-start`,
which deploys their examples anyway.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .. import sandboxed
from ..context import BenchContext
from ..fresh_worker import first_invoke, profile_note
from ..model import Comparison, Result, Side, Target
from ..servers import REPO, NimbusServer
from ..workloads import HELLO_EVENT, JS_HANDLER, PY_HANDLER
from . import _per_call

INVOICE = REPO / "examples" / "javascript" / "invoice"

PY_REQUIREMENT = "tabulate>=0.9"  # pure Python; the e2e tests use it too
PY_DEPS_HANDLER = (
    "import tabulate\n"
    "def main(event, context):\n"
    "    return {'table': tabulate.tabulate([[event['name'], 1]], tablefmt='plain')}\n"
)
COMMENT = {"python": "# rep {}\n", "javascript": "// rep {}\n"}
LANGS = ("python", "javascript")
SPAWN = {"python": "python3 per call", "javascript": "node per call"}
# Issue 6's targets.
DEPLOY_MS, DEPLOY_DEPS_MS, STORED_KB, FIRST_MS, PER_CALL_MS = 1000.0, 10000.0, 100.0, 10.0, 5.0
NOISE = ("logs", "stats", "queue")  # written by workers on their own schedule, not by a deploy


def hello_fields(lang: str, rep: int) -> dict:
    source = PY_HANDLER if lang == "python" else JS_HANDLER
    return {"code": COMMENT[lang].format(rep) + source}


def deps_fields(lang: str, rep: int) -> dict:
    if lang == "python":
        code = COMMENT[lang].format(rep) + PY_DEPS_HANDLER
        return {"code": code, "requirements": [PY_REQUIREMENT]}
    files = {str(p.relative_to(INVOICE)): p.read_text() for p in sorted(INVOICE.rglob("*"))
             if p.is_file() and p.name != "function.json"}  # fmt: skip
    files["handler.js"] = COMMENT[lang].format(rep) + files["handler.js"]
    return {"files": files, "handler": "handler.main"}


def store_sizes(nimbus: NimbusServer) -> dict[Path, int]:
    objects = nimbus.data_dir / "objects"
    return {
        p: p.stat().st_size
        for p in objects.rglob("*")
        if p.is_file() and p.relative_to(objects).parts[0] not in NOISE
    }


def added_bytes(before: dict[Path, int], after: dict[Path, int]) -> int:
    return sum(size - before.get(p, 0) for p, size in after.items() if size > before.get(p, 0))


def deploy(nimbus: NimbusServer, name: str, lang: str, fields: dict) -> tuple[float, int]:
    """(create → ready in ms, bytes the version added to the store)."""
    before = store_sizes(nimbus)
    started = time.perf_counter()
    nimbus.deploy(name, lang, **fields)
    took = (time.perf_counter() - started) * 1000
    return took, added_bytes(before, store_sizes(nimbus))


def package_manager_ms(lang: str, work: Path) -> float:
    """The same dependency installed by the package manager alone, warm cache."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if lang == "python":
        cmd = [sys.executable, "-m", "pip", "install", "--target", str(work / "t"),
               "--only-binary=:all:", "--implementation", "py", "--abi", "none",
               "--platform", "any", "--python-version", "3.14", "--no-compile",
               "--disable-pip-version-check", "--no-input", PY_REQUIREMENT]  # fmt: skip
    else:
        package = deps_fields(lang, 0)["files"]["package.json"]
        (work / "package.json").write_text(package)
        cmd = ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev",
               "--cache", str(_per_call.TOOLCHAINS / "npm-cache"), "--loglevel=warn"]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(cmd, cwd=work, check=True, capture_output=True, timeout=300)
    return (time.perf_counter() - started) * 1000


def spawn_reference(lang: str, work: Path) -> _per_call.PerCall:
    if lang == "python":
        return _per_call.python_handler({"handler.py": PY_HANDLER}, "handler.main", work)
    return _per_call.node_handler({"handler.js": JS_HANDLER}, "handler.main", work)


@dataclass
class Samples:
    """One language's samples, one per repetition and side."""

    deploys: list[float] = field(default_factory=list)
    stored_kb: list[float] = field(default_factory=list)
    deploys_deps: list[float] = field(default_factory=list)
    stored_deps_kb: list[float] = field(default_factory=list)
    package_manager: list[float] = field(default_factory=list)
    fresh: list[dict] = field(default_factory=list)  # bench.fresh_worker's JSON
    spawned: list = field(default_factory=list)  # (ms, stdout), then ms once checked

    def deploy(self, nimbus: NimbusServer, name: str, lang: str, rep: int, deps: bool) -> None:
        fields = deps_fields(lang, rep) if deps else hello_fields(lang, rep)
        took, size = deploy(nimbus, name, lang, fields)
        (self.deploys_deps if deps else self.deploys).append(took)
        (self.stored_deps_kb if deps else self.stored_kb).append(size / 1024)

    def install_alone(self, lang: str, work: Path) -> None:
        self.package_manager.append(package_manager_ms(lang, work))


def measure_deploys(ctx: BenchContext, lang: str, samples: Samples) -> None:
    """create → ready and stored bytes; with a dependency in full mode only (pip and npm
    ask the registry: seconds)."""
    nimbus = ctx.nimbus()
    # NOTE(bench): also in --quick: a store's first function of a language stores the
    # shared runtime itself (~84 MB for Python), which is no function's own cost.
    nimbus.deploy(f"warm-{lang}", lang, **hello_fields(lang, 0))
    for rep in range(1, ctx.params.runtime_deploy_reps + 1):
        samples.deploy(nimbus, f"i6-{lang}-{rep}", lang, rep, deps=False)
        if ctx.quick:
            continue
        order = [
            partial(samples.deploy, nimbus, f"i6-{lang}-deps-{rep}", lang, rep, deps=True),
            partial(samples.install_alone, lang, ctx.scratch("runtimes") / f"pm-{lang}"),
        ]
        for measure in order if rep % 2 else reversed(order):
            measure()


def measure_invokes(ctx: BenchContext, lang: str, samples: Samples, spawn) -> None:
    """A fresh worker's first invoke and per-call cost vs the interpreter per call."""
    nimbus, p = ctx.nimbus(), ctx.params
    name = f"i6-{lang}-1"
    event = json.dumps(HELLO_EVENT).encode()
    for rep in range(p.runtime_cold_reps):
        data_dir = ctx.scratch("runtimes") / f"fresh-{lang}-{rep}"
        order = [
            (samples.fresh, partial(first_invoke, nimbus.data_dir, data_dir, name, event,
                                    p.runtime_calls)),
            (samples.spawned, partial(spawn.process, event, sandboxed.context(name))),
        ]  # fmt: skip
        for into, measure in order if rep % 2 == 0 else reversed(order):
            into.append(measure())
    _per_call.keep_times(f"{lang} hello", samples.fresh, samples.spawned)


def run(ctx: BenchContext) -> list[Result]:
    results: list[Result] = []
    for lang in LANGS:
        spawn = spawn_reference(lang, ctx.scratch("runtimes") / f"spawn-{lang}")
        samples = Samples()
        measure_deploys(ctx, lang, samples)
        measure_invokes(ctx, lang, samples, spawn)
        rows = _results(lang, samples, spawn)
        first = next(r for r in rows if r.key.endswith("-first"))
        if not ctx.quick and first.target_met is False:
            data_dir = ctx.scratch("runtimes") / f"fresh-{lang}-profile"
            event = json.dumps(HELLO_EVENT).encode()
            first.notes.append(profile_note(ctx.nimbus().data_dir, data_dir, f"i6-{lang}-1", event))
        results += rows
    return results


def _results(lang: str, s: Samples, spawn: _per_call.PerCall) -> list[Result]:
    label = SPAWN[lang]
    spawned = Side(label, s.spawned)
    source_kb = len(hello_fields(lang, 1)["code"]) / 1024
    dependency = PY_REQUIREMENT if lang == "python" else "dayjs (the invoice example)"
    worker = [
        f"fresh worker: Platform.open + Sandbox.start median "
        f"{statistics.median(r['start_ms'] for r in s.fresh):.1f} ms, shared runtimes preloaded "
        f"at start median {statistics.median(r['preload_ms'] for r in s.fresh):.1f} ms "
        f"(context); cold_start flag on the first invoke: "
        f"{sorted({r['cold_start'][0] for r in s.fresh})} (True: the shared runtime was "
        f"loaded inside it, init_ms median {statistics.median(r['init_ms'] for r in s.fresh):.1f}"
        " ms — not preloaded at worker start)",
        f"reference: {spawn.described}",
    ]

    def row(what: str, title: str, unit: str, a: Side, b: Side, target: Target, notes=()):
        return Result(f"runtime-{lang}-{what}", f"{lang}: {title}", unit, False, a, b,
                      target=target, notes=list(notes))  # fmt: skip

    rows = [
        row("deploy", "create → ready, no dependencies (warm caches)", "ms",
            Side(f"{lang} create → ready", s.deploys), spawned,
            Target("<=", DEPLOY_MS, on="a"),
            ["the reference is context: one interpreter start per call"]),
        row("stored-bytes", "stored bytes per function version, no dependencies", "KB",
            Side(f"{lang}: bytes the version added to the store", s.stored_kb),
            Side("the function's own source", [source_kb] * len(s.stored_kb)),
            Target("<=", STORED_KB, on="a"),
            ["object files new or grown during the deploy (records, bundle, build log, "
             "build cache entry); the shared runtime is stored once for all functions"]),
        row("first", "first invoke on a fresh worker (in-process)", "ms",
            Side(f"{lang}: first invoke, fresh worker", [r["first_ms"] for r in s.fresh]),
            spawned, Target("<=", FIRST_MS, on="a"),
            [*worker, "of which the guest (new instance + call): median "
             f"{statistics.median(r['run_ms'] for r in s.fresh):.2f} ms; the rest is the "
             "record reads, loading what is not preloaded and the invoke path"]),
        row("per-call", "per-invocation cost, fresh instance (in-process)", "ms",
            Side(f"{lang}: invoke, fresh instance each", [r["later_ms"] for r in s.fresh]),
            spawned, Target("<=", PER_CALL_MS, on="a"),
            ["median of the calls after the first in each fresh worker, through"
             " the gateway's invoke path (records cached)",
             "of which the guest (new instance + call, InvokeResult.duration_ms): median "
             f"{statistics.median(r['later_run_ms'] for r in s.fresh):.2f} ms"]),
    ]  # fmt: skip
    if s.deploys_deps:
        rows.insert(1, row(
            "deploy-deps", f"create → ready with one dependency ({dependency})", "ms",
            Side(f"{lang} create → ready with {dependency}", s.deploys_deps),
            Side("the package manager alone installing it", s.package_manager),
            Target("<=", DEPLOY_DEPS_MS, on="a"),
            [f"stored bytes with the dependency: median "
             f"{statistics.median(s.stored_deps_kb):.0f} KB"]))  # fmt: skip
    return rows


COMPARISON = Comparison(
    key="runtimes",
    title="Python and JavaScript: deploy, stored bytes, cold and per-call invoke vs a process",
    run=run,
    uses_servers=True,
)

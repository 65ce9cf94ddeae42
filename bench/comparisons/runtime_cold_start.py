"""Cold start for every runtime: a fresh worker's first invoke vs a process or a container per call.

Each example (a hello and a JSON transform per compiled language, Python's
wordstats, JavaScript's invoice) is deployed through the real server, so the
store holds exactly what the gateway loads: the artifact and its precompiled
form (or the shared runtime's function bundle). Every repetition then starts a
new process that opens the gateway's own `Platform` over that store with an
empty data dir (an empty local cache), makes the engine and preloads the
shared runtimes as a gateway worker does at start (timed apart: worker start),
and invokes the function once through the gateway's invoke path, record read
included (`bench.fresh_worker function`). The references run the same program
once per call: `python3`/`node` running the handler, or its native binary built
for the host with the builder's glue, and the same in `docker run --rm` in the
image native functions run in.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from functools import partial

from .. import sandboxed
from ..context import BenchContext
from ..fresh_worker import first_invoke, profile_note
from ..model import Comparison, Result, Side, Target
from ..servers import REPO
from ..workloads import Workload, all_workloads
from . import _per_call

ENGINE = REPO / "scripts" / "engine.sh"
INTERPRETED = ("python", "javascript")
# Issue 8, item 2.
PROCESS_TARGETS = {"python": 1 / 5, "javascript": 1 / 5}  # ≥ 5× faster than the interpreter
NATIVE_TARGET = 2.0  # compiled: within 2× of the native binary
DOCKER_TARGET = 1 / 30  # every runtime ≥ 30× faster than docker run
QUICK = ("c hello",)  # the smoke test: < 25 s with `runtimes` (which covers Python and JS)


def workloads(quick: bool) -> list[Workload]:
    """The hello and transform of each compiled language, Python's and JavaScript's
    transforms (their hellos are the `runtimes` comparison's issue-6 rows)."""
    chosen = [w for w in all_workloads() if w.runtime not in INTERPRETED or w.kind != "hello"]
    return [w for w in chosen if w.label in QUICK] if quick else chosen


def function_name(w: Workload) -> str:
    return f"cold-{w.runtime}-{w.kind}"


class Engine:
    """The local Docker engine: started here only if none answers, then stopped by us."""

    def __init__(self) -> None:
        self.started_here = False
        self.cli: list[str] | None = None

    def start(self) -> list[str] | None:
        docker = _per_call.docker_cli()
        if docker is None:
            return None
        if subprocess.run([str(ENGINE), "status"], capture_output=True).returncode != 0:
            out = subprocess.run([str(ENGINE), "start"], capture_output=True, text=True,
                                 timeout=600, cwd=REPO)  # fmt: skip
            if out.returncode != 0:
                raise RuntimeError(f"scripts/engine.sh start failed:\n{out.stderr[-2000:]}")
            self.started_here = True
        env = subprocess.run([str(ENGINE), "env"], capture_output=True, text=True, check=True)
        host = env.stdout.strip().split("=", 1)[1]
        self.cli = [docker[0], "-H", host]
        return self.cli

    def stop(self) -> None:
        if self.started_here:
            subprocess.run([str(ENGINE), "stop"], capture_output=True, timeout=120, cwd=REPO)


def run(ctx: BenchContext) -> list[Result]:
    from sandbox import NativeConfig

    nimbus = ctx.nimbus()
    work = ctx.scratch("runtime-cold-start")
    chosen = workloads(ctx.quick)
    deploy_ms: dict[Workload, float] = {}
    refs: dict[Workload, _per_call.PerCall] = {}
    for w in chosen:
        started = time.perf_counter()
        nimbus.deploy(function_name(w), w.runtime, **w.fields)
        deploy_ms[w] = (time.perf_counter() - started) * 1000
        refs[w] = _per_call.build(w.runtime, w.fields["files"], w.fields.get("handler"),
                                  work / f"{w.runtime}-{w.kind}")  # fmt: skip

    engine = Engine()
    image = NativeConfig(work_dir=work / "native").image
    fresh: dict[Workload, list[dict]] = {w: [] for w in chosen}
    process: dict[Workload, list[float]] = {w: [] for w in chosen}
    docker: dict[Workload, list[float]] = {w: [] for w in chosen}
    try:
        cli = engine.start()
        for rep in range(ctx.params.runtime_cold_reps):
            for w in chosen:
                name, event = function_name(w), json.dumps(w.event).encode()
                context = sandboxed.context(name)
                data_dir = work / f"fresh-{name}-{rep}"  # new and empty: a fresh worker
                sides = [
                    (fresh[w], partial(first_invoke, nimbus.data_dir, data_dir, name, event)),
                    (process[w], partial(refs[w].process, event, context)),
                ]
                if cli:
                    sides.append(
                        (docker[w], partial(refs[w].docker_run, cli, image, event, context))
                    )
                for samples, measure in sides if rep % 2 == 0 else reversed(sides):
                    samples.append(measure())
        for w in chosen:
            _per_call.keep_times(w.label, fresh[w], process[w])
            _per_call.keep_times(w.label, fresh[w], docker[w])
    finally:
        engine.stop()

    results: list[Result] = []
    for w in chosen:
        results += _results(w, fresh[w], process[w], docker[w], refs[w], engine)
    if not ctx.quick:
        for result in results:
            if result.target_met is False and result.key.endswith("-vs-process"):
                name = result.key.removesuffix("-vs-process")
                w = next(w for w in chosen if function_name(w) == name)
                event = json.dumps(w.event).encode()
                data_dir = work / f"fresh-{name}-profile"
                result.notes.append(profile_note(nimbus.data_dir, data_dir, name, event))
    results += _deploy_results(chosen, deploy_ms, refs)
    return results


def ms_result(
    key: str, title: str, a: Side, b: Side, target: Target, notes: list[str], details=None
) -> Result:
    """A row in milliseconds, lower is better."""
    return Result(key, title, "ms", False, a, b, target, notes, details or {})


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _results(
    w: Workload,
    fresh: list[dict],
    process: list[float],
    docker: list[float],
    ref: _per_call.PerCall,
    engine: Engine,
) -> list[Result]:
    first = Side(f"Nimbus {w.label}: first invoke on a fresh worker (in-process)",
                 [r["first_ms"] for r in fresh])  # fmt: skip
    flags = sorted({r["cold_start"][0] for r in fresh})
    notes = [
        "worker start (Platform.open + Sandbox.start): median "
        f"{_median(fresh, 'start_ms'):.1f} ms; "
        f"shared runtimes preloaded at start (PRELOAD_RUNTIMES): median "
        f"{_median(fresh, 'preload_ms'):.1f} ms — context, not in the first invoke",
        f"inside the first invoke: artifact load (init_ms) median {_median(fresh, 'init_ms'):.1f} "
        f"ms, guest instantiate + run median {_median(fresh, 'run_ms'):.1f} ms, the rest is the "
        f"record reads and the invoke path; cold_start flag on the first invoke: {flags}",
        f"reference: {ref.described}",
    ]
    process_target = PROCESS_TARGETS.get(w.runtime, NATIVE_TARGET)
    kind = "interpreter" if w.runtime in INTERPRETED else "native binary"
    docker_note = "docker run --rm -i --pull=never --network=none --read-only in the native "
    docker_note += "runtime image" + (
        " with the host's /usr mounted read-only (python3/node)" if w.runtime in INTERPRETED else ""
    )
    docker_note += ", engine started for this comparison" if engine.started_here else ""
    key = f"cold-{w.runtime}-{w.kind}"
    results = [
        ms_result(f"{key}-vs-process", f"{w.label}: cold start vs a process per call ({kind})",
                  first, Side(f"{kind} per call", process), Target("<=", round(process_target, 4)),
                  notes, details={"fresh_worker": fresh}),
    ]  # fmt: skip
    if docker:
        results.append(
            ms_result(f"{key}-vs-docker", f"{w.label}: cold start vs docker run per call", first,
                      Side("docker run --rm -i per call", docker),
                      Target("<=", round(DOCKER_TARGET, 4)), [docker_note])
        )  # fmt: skip
    return results


def _deploy_results(
    chosen: list[Workload], deploy_ms: dict[Workload, float], refs: dict
) -> list[Result]:
    """Issue 8 item 4 for the compiled languages: create → ready of each example (warm
    toolchain caches), next to building the same program for the host."""
    results = []
    for lang in ("c", "rust", "go"):
        mine = [w for w in chosen if w.runtime == lang]
        if not mine:
            continue
        kinds = ", ".join(w.kind for w in mine)
        results.append(
            ms_result(f"runtime-{lang}-deploy", f"{lang}: create → ready (warm caches), one per "
                      "example", Side(f"{lang} create → ready ({kinds})",
                                      [deploy_ms[w] for w in mine]),
                      Side("host build of the same program", [refs[w].built_ms for w in mine]),
                      Target("<=", DEPLOY_TARGETS[lang], on="a"),
                      ["through the API with ?wait=true: compile in the build jail + precompile",
                       "host build: " + "; ".join(sorted({refs[w].described for w in mine}))])
        )  # fmt: skip
    return results


DEPLOY_TARGETS = {"c": 1000.0, "rust": 2000.0, "go": 5000.0}

COMPARISON = Comparison(
    key="runtime-cold-start",
    title="Cold start per runtime: fresh worker vs a process or a container per call",
    run=run,
    uses_servers=True,
)

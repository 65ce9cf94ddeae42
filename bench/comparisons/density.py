"""Density: worker memory and tail latency with many deployed functions, invoked round-robin.

Per runtime, one fresh `nimbus serve` (2 workers): one function is deployed
and loaded first — the reference — then the server grows to each count of
the ladder (`Params.density_counts`), all through the real API with a
bounded pool of clients (`?wait=true`, so each is built, precompiled and
active), and wrk walks every function in turn. The p99 of the N-function walk
and of the 1-function load alternate, repetition by repetition, on the same
server. Memory is read from /proc after each load: the workers' RSS sum
(against the same sum with one function) and the platform's whole PSS (master
and workers) against a process-per-function model's N × one idle
`python3`/`node`/native process. Every function is invoked once before the
load and must answer as its own variant.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import orjson

from .. import roundrobin, variants, wrk
from ..context import BenchContext
from ..model import Comparison, Result, Side
from ..procmem import ServerMemory, idle_process_rss_mib, server_memory
from ..servers import REPO, NimbusServer
from ..wasm import b64

EVENT = b'{"name": "Ada"}'
DEPLOY_CLIENTS = 8  # concurrent creates: enough to keep both workers' build queues busy
COMPILED = {"c": "hello.c", "rust": "hello.rs", "go": "hello.go"}

# One idle process of the process-per-function model, ready to serve (prints a line).
PROCESS_MODEL = {
    "python": (["python3", "-c", "import json, sys; print('ready', flush=True); sys.stdin.read()"],
               "python3 process"),
    "javascript": (["node", "-e", "console.log('ready'); process.stdin.resume()"],
                   "node process"),
}  # fmt: skip
NATIVE_MODEL = "native C process"
NATIVE_SOURCE = '#include <stdio.h>\nint main(void){puts("ready");fflush(stdout);getchar();}\n'


@dataclass
class Fleet:
    """The functions of one runtime on one server, and how to grow it by one variant."""

    server: NimbusServer
    runtime: str
    names: list[str] = field(default_factory=list)
    deploy_s: float = 0.0  # wall time spent growing the fleet (setup, not measured load)
    template: bytes | None = None  # compiled runtimes: the module built from source

    def name(self, n: int) -> str:
        return f"d-{self.runtime}-{n}"

    def expected(self, n: int) -> Callable[[dict], bool]:
        if self.runtime in variants.SOURCES:
            return lambda body: body.get("variant") == n
        # variant 0 is the module the platform built from source: still `Hello, `
        greeting = variants.GREETING.decode() if n == 0 else variants.greeting(n)
        return lambda body: str(body.get("message", "")).startswith(greeting)

    def grow(self, api: httpx.Client, count: int) -> None:
        started = time.monotonic()
        if not self.names:  # variant 0 comes first: compiled runtimes build their template
            self._deploy(api, 0)
            self.names.append(self.name(0))
        with ThreadPoolExecutor(DEPLOY_CLIENTS) as pool:
            self.names += pool.map(lambda n: self._deploy(api, n), range(len(self.names), count))
        self.deploy_s += time.monotonic() - started

    def _deploy(self, api: httpx.Client, n: int) -> str:
        name = self.name(n)
        if self.runtime in variants.SOURCES:
            body = {"runtime": self.runtime, "code": variants.source(self.runtime, n)}
        elif n == 0:
            code = (REPO / "examples" / self.runtime / COMPILED[self.runtime]).read_text()
            body = {"runtime": self.runtime, "code": code}
        else:
            assert self.template is not None
            body = {"runtime": "wasm",
                    "artifact_base64": b64(variants.patched_module(self.template, n))}  # fmt: skip
        resp = api.post("/api/v1/functions", params={"wait": "true"}, json={"name": name, **body})
        if resp.status_code != 201 or resp.json().get("status") != "active":
            raise RuntimeError(f"deploying {name}: {resp.status_code} {resp.text[:800]}")
        if n == 0 and self.runtime in COMPILED:
            self.template = variants.built_module(self.server.data_dir, name)
        return name

    def check_all(self, api: httpx.Client) -> None:
        """Invoke every function once (warming both workers a little) and check its answer."""

        def check(n: int) -> None:
            resp = api.post(f"/api/v1/functions/{self.names[n]}/invoke", content=EVENT,
                            headers={"Content-Type": "application/json"})  # fmt: skip
            if resp.status_code != 200 or not self.expected(n)(orjson.loads(resp.content)):
                raise RuntimeError(f"{self.names[n]}: {resp.status_code} {resp.text[:500]}")

        with ThreadPoolExecutor(DEPLOY_CLIENTS) as pool:
            list(pool.map(check, range(len(self.names))))

    def paths(self, count: int) -> list[str]:
        return [f"/api/v1/functions/{name}/invoke" for name in self.names[:count]]


def _load(ctx: BenchContext, fleet: Fleet, count: int, seconds: int) -> wrk.WrkResult:
    server = fleet.server
    result = roundrobin.run(
        server.url,
        fleet.paths(count),
        body=EVENT,
        headers={"Authorization": f"Bearer {server.api_key}"},
        connections=ctx.params.density_connections,
        duration_s=seconds,
    )
    if result.ok_fraction < 1:
        raise RuntimeError(f"{count} {fleet.runtime} functions: {result.non_2xx} non-2xx answers, "
                           f"{result.socket_errors} socket errors")  # fmt: skip
    return result


def _process_model_mib(ctx: BenchContext, runtime: str) -> tuple[float, str]:
    if runtime in PROCESS_MODEL:
        cmd, label = PROCESS_MODEL[runtime]
        return idle_process_rss_mib(cmd), label
    work = ctx.scratch("density")
    (work / "idle.c").write_text(NATIVE_SOURCE)
    subprocess.run(["gcc", "-O2", "-o", str(work / "idle"), str(work / "idle.c")], check=True)
    return idle_process_rss_mib([str(work / "idle")]), NATIVE_MODEL


@dataclass(frozen=True)
class Level:
    """One rung of the ladder, measured: memory after the loads and both sides' wrk runs."""

    count: int
    memory: ServerMemory
    many: list[wrk.WrkResult]  # the N-function round-robin loads
    single: list[wrk.WrkResult]  # the 1-function loads, alternating with them


def _measure_level(ctx: BenchContext, fleet: Fleet, api: httpx.Client, count: int) -> Level:
    p = ctx.params
    fleet.grow(api, count)
    fleet.check_all(api)
    _load(ctx, fleet, count, 1)  # a warm-up walk: both workers meet most functions
    many, single = [], []
    for rep in range(p.density_reps):
        for n in (count, 1) if rep % 2 == 0 else (1, count):
            (many if n == count else single).append(_load(ctx, fleet, n, p.density_wrk_s))
    return Level(count, server_memory(fleet.server), many, single)


def _measure_runtime(ctx: BenchContext, runtime: str, counts: tuple[int, ...]) -> list[Result]:
    server = NimbusServer(
        ctx.scratch(f"density-{runtime}"), ctx.log_dir, MAX_FUNCTIONS=str(max(counts) + 10)
    )
    server.start()
    try:
        with server.client(timeout=600) as api:
            fleet = Fleet(server, runtime)
            fleet.grow(api, 1)
            fleet.check_all(api)
            _load(ctx, fleet, 1, ctx.params.density_wrk_s)  # warm both workers on it
            previous = first = Level(1, server_memory(server), [], [])
            process = _process_model_mib(ctx, runtime)
            results = []
            for count in counts:
                level = _measure_level(ctx, fleet, api, count)
                results += _results(runtime, fleet, first, previous, level, process)
                previous = level
            return results
    finally:
        server.stop()


def _results(
    runtime: str,
    fleet: Fleet,
    first: Level,
    previous: Level,
    level: Level,
    process: tuple[float, str],
) -> list[Result]:
    count, memory = level.count, level.memory
    key = f"density-{runtime}-{count}"
    fns = f"{count} {runtime} functions"
    details = {
        "memory_1_function": first.memory.as_dict(),
        f"memory_{count}_functions": memory.as_dict(),
        "deploy_s_so_far": round(fleet.deploy_s, 1),
        "functions_deployed": len(fleet.names),
        "wrk": {"many": [w.as_dict() for w in level.many],
                "one": [w.as_dict() for w in level.single]},
    }  # fmt: skip
    added = memory.workers_rss_mib - previous.memory.workers_rss_mib
    per_function_kib = added / (count - previous.count) * 1024
    many_rps = statistics.median(w.requests_per_s for w in level.many)
    single_rps = statistics.median(w.requests_per_s for w in level.single)
    process_mib, process_label = process
    return [
        Result(
            key=f"{key}-rss",
            title=f"Density, {fns}: workers' RSS vs 1 function",
            unit="MiB",
            higher_is_better=False,
            a=Side(f"{fns} (sum over workers)", [memory.workers_rss_mib]),
            b=Side(f"1 {runtime} function (same server, earlier)", [first.memory.workers_rss_mib]),
            notes=[
                f"{per_function_kib:.0f} KiB of workers' RSS per function added since "
                f"{previous.count} function{'s' if previous.count > 1 else ''}",
                f"deployed through the API in {fleet.deploy_s:.1f} s so far, "
                f"{fleet.deploy_s / len(fleet.names):.2f} s per function (setup, not measured)",
            ],
            details=details,
        ),
        Result(
            key=f"{key}-p99",
            title=f"Density, {fns} round-robin: p99 vs 1 function",
            unit="ms",
            higher_is_better=False,
            a=Side(f"{fns} round-robin", [w.p99_ms for w in level.many]),
            b=Side(f"1 {runtime} function", [w.p99_ms for w in level.single]),
            notes=[f"throughput {many_rps:.0f} vs {single_rps:.0f} req/s"],
        ),
        Result(
            key=f"{key}-vs-processes",
            title=f"Density, {fns}: platform memory vs a process per function",
            unit="MiB",
            higher_is_better=False,
            a=Side(
                "Nimbus master RSS + workers' PSS", [memory.master_rss_mib + memory.workers_pss_mib]
            ),
            b=Side(
                f"{count} × one idle {process_label} ({process_mib:.1f} MiB)", [count * process_mib]
            ),
            notes=["the reference is an estimate: N × the RSS of one process ready to serve"],
        ),
    ]


def run(ctx: BenchContext) -> list[Result]:
    results: list[Result] = []
    for runtime, counts in ctx.params.density_counts:
        results += _measure_runtime(ctx, runtime, counts)
    return results


COMPARISON = Comparison(
    key="density",
    title="Density: worker memory and p99 with many functions, round-robin",
    run=run,
    uses_servers=False,  # each runtime gets its own server, stopped when it is measured
)

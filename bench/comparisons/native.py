"""Native functions: warm and cold invokes in Docker vs the same echo as WASM vs `docker run`.

In-process, the real `Sandbox` against the local engine (DOCKER_HOST, or the
one `make engine` runs, started here if it is not running). The native
program is a C echo (stdin → stdout) built with `gcc -static`; the WASM side
is the bench's WAT echo, the same program as a WASI command. The reference
for a cold call is what the issue compares with: `docker run --rm -i
--pull=never` of the same binary in the same image, one container per call.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from .. import sandboxed
from ..context import BenchContext
from ..model import Comparison, Result, Side, Target
from ..servers import REPO
from ..wasm import EVENT, echo_module

WARM_TARGET = Target("<=", 30.0, on="a")  # issue 7: warm p50 ≤ 30 ms
COLD_TARGET = Target("<=", 1000.0, on="a")  # issue 7: cold ≤ 1 s

ECHO_C = r"""
#include <unistd.h>
int main(void) {
    char buf[65536]; ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) { ssize_t w = write(1, buf + off, n - off);
                                          if (w <= 0) return 1; off += w; }
    }
    return 0;
}
"""


def docker_host() -> str:
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    out = subprocess.run(
        [str(REPO / "scripts" / "engine.sh"), "start"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/engine.sh start failed:\n{out.stderr[-2000:]}")
    return [x for x in out.stdout.splitlines() if x.startswith("DOCKER_HOST=")][-1].split("=", 1)[1]


def build_echo(work: Path) -> Path:
    src, out = work / "echo.c", work / "echo"
    src.write_text(ECHO_C)
    subprocess.run(["gcc", "-O2", "-static", "-o", str(out), str(src)], check=True, timeout=120)
    return out


def p50_ms(call, calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(ctx: BenchContext) -> list[Result]:
    from sandbox import Deployment, NativeConfig, Sandbox, SandboxConfig
    from store import LocalStore
    from store.functions import FunctionRepo

    host = docker_host()
    work = ctx.scratch("native")
    binary = build_echo(work)
    wasm_artifact = sandboxed.put_artifact(
        work / "store", echo_module(), precompile_cache=work / "c"
    )
    store = LocalStore(wasm_artifact.store_dir)
    key, sha = FunctionRepo(store).put_blob(binary.read_bytes())
    native_config = NativeConfig(work_dir=work / "native", docker_host=host)
    sandbox = Sandbox(store, SandboxConfig(cache_dir=work / "c", native=native_config))
    image = native_config.image

    def native_dep(n: int) -> Deployment:
        return Deployment(f"fn_bench{n}", "bench-native", 1, key, sha, "native", timeout_sec=30)

    warm_dep = native_dep(0)
    wasm_dep = sandboxed.deployment(wasm_artifact)
    context = sandboxed.context()

    def invoke(dep) -> None:
        result = sandbox.invoke(dep, EVENT, context)
        if result.error is not None or result.output != EVENT:
            raise RuntimeError(f"{dep.kind} did not echo: {result.error} {result.output[:200]!r}")

    docker = shutil.which("docker")
    docker_run = [docker, "-H", host, "run", "--rm", "-i", "--pull=never", "--network=none",
                  "--read-only", "--user=65534:65534", "--log-driver=none",
                  f"--volume={binary}:/function:ro", image, "/function"]  # fmt: skip

    def docker_run_once() -> float:
        t0 = time.perf_counter()
        out = subprocess.run(docker_run, input=EVENT, capture_output=True, timeout=60)
        took = (time.perf_counter() - t0) * 1000
        if out.returncode != 0 or out.stdout != EVENT:
            raise RuntimeError(f"docker run failed: {out.stderr[-500:]!r}")
        return took

    p = ctx.params
    calls = max(30, p.inproc_calls // 10)
    warm_native: list[float] = []
    warm_wasm: list[float] = []
    cold_native: list[float] = []
    cold_init: list[float] = []
    per_call_docker: list[float] = []
    try:
        invoke(warm_dep)  # its container starts: not measured
        invoke(wasm_dep)
        for rep in range(p.inproc_reps):
            sides = [(warm_native, warm_dep), (warm_wasm, wasm_dep)]
            for samples, dep in sides if rep % 2 == 0 else reversed(sides):
                samples.append(p50_ms(lambda dep=dep: invoke(dep), calls))
        for rep in range(p.cold_reps):
            dep = native_dep(rep + 1)  # a function version this worker has never run

            def cold(dep=dep) -> float:
                t0 = time.perf_counter()
                result = sandbox.invoke(dep, EVENT, context)
                took = (time.perf_counter() - t0) * 1000
                if not result.cold_start or result.output != EVENT:
                    raise RuntimeError(f"not a cold echo: {result}")
                cold_init.append(result.init_ms)
                return took

            order = [(cold_native, cold), (per_call_docker, docker_run_once)]
            for samples, measure in order if rep % 2 == 0 else reversed(order):
                samples.append(measure())
    finally:
        sandbox.close()

    notes = [
        f"in-process Sandbox.invoke against {host}; native echo in C (gcc -static), "
        f"{binary.stat().st_size} bytes; WASM: the bench's WAT echo",
        f"warm: p50 of {calls} calls per repetition, a warm container's agent forks and execs "
        "the binary per call",
    ]
    cold_notes = [
        "cold: the first call of a function version this worker has never run — "
        "container create + start + agent hello + the call",
        f"container start inside the cold call (InvokeResult.init_ms): median "
        f"{statistics.median(cold_init):.0f} ms",
        "docker run: `docker run --rm -i --pull=never --network=none --read-only` of the same "
        "binary in the same image, through the CLI, once per call",
    ]
    return [
        Result(
            key="native-warm-invoke",
            title="Native warm invoke (container kept warm) vs the same echo as WASM",
            unit="ms",
            higher_is_better=False,
            a=Side("Sandbox.invoke, native, warm container", warm_native),
            b=Side("Sandbox.invoke, WASM module", warm_wasm),
            target=WARM_TARGET,
            notes=notes,
        ),
        Result(
            key="native-cold-invoke",
            title="Native cold invoke (new container) vs `docker run` per call",
            unit="ms",
            higher_is_better=False,
            a=Side("Sandbox.invoke, native, first call (new container)", cold_native),
            b=Side("docker run --rm per call", per_call_docker),
            target=COLD_TARGET,
            notes=cold_notes,
        ),
        Result(
            key="native-warm-vs-docker-run",
            title="Native warm invoke vs `docker run` per call",
            unit="ms",
            higher_is_better=False,
            a=Side("Sandbox.invoke, native, warm container", warm_native),
            b=Side("docker run --rm per call", per_call_docker),
            notes=["what the warm path saves over a container per call"],
        ),
    ]


COMPARISON = Comparison(
    key="native",
    title="Native functions in Docker: warm and cold vs WASM and docker run",
    run=run,
)

"""Sandbox vs the limit: a warm `Sandbox.invoke` vs raw wasmtime-py instantiate + `_start`.

Same module, same event, same process; batches alternate between the two
sides. Each repetition's sample is the median time of one call in its batch.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable

from .. import sandboxed
from ..context import BenchContext
from ..model import Comparison, Result, Side, Target
from ..rawwasm import RawRunner, shm_dir
from ..wasm import EVENT, echo_module

OVERHEAD_TARGET = Target("<=", 2.0)  # issue 3: the sandbox within 2x of raw wasmtime-py


def per_call_us(call: Callable[[], object], calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000


def run(ctx: BenchContext) -> list[Result]:
    wasm = echo_module()
    work = ctx.scratch("sandbox-overhead")
    artifact = sandboxed.put_artifact(work / "store", wasm, precompile_cache=work / "cache")
    sandbox = sandboxed.open_sandbox(artifact.store_dir, work / "cache")
    deployment = sandboxed.deployment(artifact)
    context = sandboxed.context()

    io_dir = shm_dir()
    try:
        raw = RawRunner.compile(wasm, io_dir)

        def nimbus_call() -> bytes:
            result = sandbox.invoke(deployment, EVENT, context)
            if result.error is not None:
                raise RuntimeError(f"the sandbox failed the echo: {result.error}")
            return result.output

        for name, call in (("sandbox", nimbus_call), ("raw", lambda: raw.call(EVENT))):
            out = call()  # the first call also loads and pre-warms: not measured
            if bytes(out) != EVENT:
                raise RuntimeError(f"{name} did not echo the event: {bytes(out)[:200]!r}")

        p = ctx.params
        nimbus_us: list[float] = []
        raw_us: list[float] = []
        for rep in range(p.inproc_reps):
            batches = [(nimbus_us, nimbus_call), (raw_us, lambda: raw.call(EVENT))]
            for samples, call in batches if rep % 2 == 0 else reversed(batches):
                samples.append(per_call_us(call, p.inproc_calls))
    finally:
        shutil.rmtree(io_dir, ignore_errors=True)
        close = getattr(sandbox, "close", None)
        if close is not None:
            close()

    return [
        Result(
            key="sandbox-warm-invoke",
            title="In-process: warm Sandbox.invoke vs raw wasmtime-py instantiate + call",
            unit="µs/call",
            higher_is_better=False,
            a=Side("Sandbox.invoke (warm)", nimbus_us),
            b=Side("raw wasmtime-py (InstancePre + _start)", raw_us),
            target=OVERHEAD_TARGET,
            notes=[
                f"median of {ctx.params.inproc_calls} calls per repetition; "
                "both sides make a fresh instance per call and pass the event as stdin"
            ],
            details={"calls_per_rep": ctx.params.inproc_calls, "module_bytes": len(wasm)},
        )
    ]


COMPARISON = Comparison(
    key="sandbox-overhead",
    title="Sandbox vs the limit: warm in-process invoke vs raw wasmtime-py",
    run=run,
)

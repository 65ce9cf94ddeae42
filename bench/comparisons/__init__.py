"""Every comparison the harness runs, in report order.

To add one: write a module here with a `run(ctx) -> list[Result]` and a
`COMPARISON = Comparison(key, title, run, uses_servers=...)`, then list it
below. `ctx` (bench.context.BenchContext) gives the run's parameters, scratch
folders and the shared servers (`ctx.baseline()`, `ctx.nimbus()`,
`ctx.deployed(name, wasm)`); `bench.wrk.run` loads a URL.
"""

from __future__ import annotations

from ..model import Comparison
from . import (
    alias_invoke,
    async_invoke,
    cold_start,
    density,
    go_deploy,
    http_invoke,
    native,
    pooling,
    prewarm,
    replicas,
    runtime_cold_start,
    runtime_load,
    runtimes,
    sandbox_overhead,
    scale_from_zero,
    store_backends,
)

COMPARISONS: list[Comparison] = [
    http_invoke.COMPARISON,
    alias_invoke.COMPARISON,
    async_invoke.COMPARISON,
    sandbox_overhead.COMPARISON,
    cold_start.COMPARISON,
    native.COMPARISON,
    runtimes.COMPARISON,
    runtime_cold_start.COMPARISON,
    go_deploy.COMPARISON,
    runtime_load.COMPARISON,
    pooling.COMPARISON,
    prewarm.COMPARISON,
    store_backends.COMPARISON,
    replicas.COMPARISON,
    density.COMPARISON,
    scale_from_zero.COMPARISON,
]


def select(keys: list[str] | None) -> list[Comparison]:
    if not keys:
        return list(COMPARISONS)
    known = {c.key: c for c in COMPARISONS}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SystemExit(f"unknown comparison(s) {unknown}; known: {sorted(known)}")
    return [c for c in COMPARISONS if c.key in keys]

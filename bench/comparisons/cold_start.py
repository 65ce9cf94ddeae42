"""First invoke on a fresh worker: the artifact and its precompiled form are in the store.

Every repetition is a new process with an empty local cache, so the first
`Sandbox.invoke` really loads the artifact from the store. The reference is
raw wasmtime-py in a new process loading the precompiled module from a local
file (`Module.deserialize_file`) and calling it once.
"""

from __future__ import annotations

import statistics

from .. import sandboxed
from ..context import BenchContext
from ..fresh_worker import spawn as fresh_process
from ..model import Comparison, Result, Side, Target
from ..rawwasm import serialize
from ..wasm import echo_module

FIRST_INVOKE_TARGET = Target("<=", 5.0, on="a")  # issue 3: ≤ 5 ms in-process, small module


def run(ctx: BenchContext) -> list[Result]:
    wasm = echo_module()
    work = ctx.scratch("cold-start")
    # The build pipeline's job, done once: the wasm and its precompiled form in the store.
    artifact = sandboxed.put_artifact(work / "store", wasm, precompile_cache=work / "build-cache")
    cwasm = work / "echo.cwasm"
    cwasm.write_bytes(serialize(wasm))

    lazy: list[dict] = []
    started: list[dict] = []
    raw: list[dict] = []
    for rep in range(ctx.params.cold_reps):
        in_store = (str(artifact.store_dir), artifact.key, artifact.sha256)
        sides = [
            (
                lazy,
                ("sandbox", "lazy", in_store[0], str(work / f"cache-lazy-{rep}"), *in_store[1:]),
            ),
            (
                started,
                (
                    "sandbox",
                    "started",
                    in_store[0],
                    str(work / f"cache-started-{rep}"),
                    *in_store[1:],
                ),
            ),
            (raw, ("raw", str(cwasm))),
        ]
        # Every cache folder is new and empty: a fresh worker on a fresh machine.
        for samples, args in sides if rep % 2 == 0 else reversed(sides):
            samples.append(fresh_process(*args))

    common = [
        "each repetition is a new process with an empty local cache; imports are not counted",
        f"artifact load inside the first call (InvokeResult.init_ms): median "
        f"{_median(lazy, 'init_ms'):.2f} ms (engine on first use), "
        f"{_median(started, 'init_ms'):.2f} ms (engine made at start)",
        f"second call in the same process: Sandbox {_median(started, 'second_ms'):.3f} ms, "
        f"raw {_median(raw, 'second_ms'):.3f} ms",
    ]
    for runs in (lazy, started):
        flags = {tuple(r["cold_start"]) for r in runs}
        if flags != {(True, False)}:
            common.append(
                f"cold_start flags (first, second) seen: {sorted(flags)}, not (True, False)"
            )
    details = {"lazy": lazy, "started": started, "raw": raw, "module_bytes": len(wasm)}
    return [
        Result(
            key="cold-first-invoke",
            title="First invoke on a fresh worker, engine made on first use (as the gateway does)",
            unit="ms",
            higher_is_better=False,
            a=Side("Sandbox.invoke, first call of a new process", [r["first_ms"] for r in lazy]),
            b=Side(
                "raw Engine() + deserialize_file + instantiate + call",
                [r["setup_ms"] + r["first_ms"] for r in raw],
            ),
            target=FIRST_INVOKE_TARGET,
            notes=common,
            details=details,
        ),
        Result(
            key="cold-first-invoke-started",
            title="First invoke on a fresh worker, engine made at worker start (Sandbox.start())",
            unit="ms",
            higher_is_better=False,
            a=Side("Sandbox.invoke after start()", [r["first_ms"] for r in started]),
            b=Side("raw deserialize_file + instantiate + call", [r["first_ms"] for r in raw]),
            target=FIRST_INVOKE_TARGET,
            notes=[
                f"worker start: Sandbox(...) + start() median {_median(started, 'setup_ms'):.2f} "
                f"ms; raw Engine() median {_median(raw, 'setup_ms'):.2f} ms"
            ],
        ),
    ]


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


COMPARISON = Comparison(
    key="cold-start",
    title="Cold start: first invoke on a fresh worker",
    run=run,
)

"""First invoke on a fresh worker: the artifact and its precompiled form are in the store.

Every repetition is a new process with an empty local cache, so the first
`Sandbox.invoke` really loads the artifact from the store. The reference is
raw wasmtime-py in a new process loading the precompiled module from a local
file (`Module.deserialize_file`) and calling it once.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from .. import sandboxed
from ..context import BenchContext
from ..model import Comparison, Result, Side, Target
from ..rawwasm import serialize
from ..servers import REPO
from ..wasm import echo_module

FIRST_INVOKE_TARGET = Target("<=", 5.0, on="a")  # issue 3: ≤ 5 ms in-process, small module


def fresh_process(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.fresh_worker", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"fresh worker {args[0]} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result.get("ok"):
        raise RuntimeError(f"fresh worker {args[0]} did not echo the event: {result}")
    return result


def run(ctx: BenchContext) -> list[Result]:
    wasm = echo_module()
    work = ctx.scratch("cold-start")
    # The build pipeline's job, done once: the wasm and its precompiled form in the store.
    artifact = sandboxed.put_artifact(work / "store", wasm, precompile_cache=work / "build-cache")
    cwasm = work / "echo.cwasm"
    cwasm.write_bytes(serialize(wasm))

    nimbus: list[dict] = []
    raw: list[dict] = []
    for rep in range(ctx.params.cold_reps):
        cache = work / f"worker-cache-{rep}"  # empty: a fresh worker on a fresh machine
        in_store = (str(artifact.store_dir), str(cache), artifact.key, artifact.sha256)
        sides = [(nimbus, ("sandbox", *in_store)), (raw, ("raw", str(cwasm)))]
        for samples, args in sides if rep % 2 == 0 else reversed(sides):
            samples.append(fresh_process(*args))

    notes = [
        "each repetition is a new process with an empty local cache; imports and engine "
        "set-up are worker start and not counted",
        f"worker start (Sandbox(...)): median {_median(nimbus, 'setup_ms'):.2f} ms; "
        f"raw Engine(): median {_median(raw, 'setup_ms'):.2f} ms",
        f"second call in the same process: Sandbox {_median(nimbus, 'second_ms'):.3f} ms, "
        f"raw {_median(raw, 'second_ms'):.3f} ms",
    ]
    flags = {tuple(r["cold_start"]) for r in nimbus}
    if flags != {(True, False)}:
        notes.append(f"cold_start flags (first, second) seen: {sorted(flags)}, not (True, False)")
    return [
        Result(
            key="cold-first-invoke",
            title="First invoke on a fresh worker (artifact in the store) vs raw wasmtime-py",
            unit="ms",
            higher_is_better=False,
            a=Side("Sandbox.invoke, first call of a new process", [r["first_ms"] for r in nimbus]),
            b=Side("raw deserialize_file + instantiate + call", [r["first_ms"] for r in raw]),
            target=FIRST_INVOKE_TARGET,
            notes=notes,
            details={"nimbus": nimbus, "raw": raw, "module_bytes": len(wasm)},
        )
    ]


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


COMPARISON = Comparison(
    key="cold-start",
    title="Cold start: first invoke on a fresh worker",
    run=run,
)

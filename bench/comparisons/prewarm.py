"""Pre-warmed instances: the first invoke of a pre-warmed Python / JavaScript function
vs the same call making its instance, in-process (issue 19: ≤ 1 ms).

A gateway worker (its own process, over the shared server's store) calls each
hello once every ~30 ms through the gateway's invoke path: with pre-warming each
call finds a fresh instance ready, the function's module already loaded by the
runtime's `load` and its `run` path taken once (refused before the handler, so
the engine has compiled it); without it (`PREWARM_PER_FUNCTION=0`) each call instantiates.
Both sides use a fresh instance per call (no reuse).
"""

from __future__ import annotations

import orjson

from ..context import BenchContext
from ..fresh_worker import spawn
from ..model import Comparison, Result, Side, Target
from ..workloads import HELLO_EVENT, JS_HANDLER, PY_HANDLER

HELLOS = {"python": PY_HANDLER, "javascript": JS_HANDLER}
TARGET = Target("<=", 1.0, on="a")
CPU_NOTE = (
    "the worker process's CPU (every thread) over the calls, until the last call's refill "
    "is done: pre-warming moves instantiation off the request path, it does not save CPU"
)


def run(ctx: BenchContext) -> list[Result]:
    nimbus = ctx.nimbus()
    event = orjson.dumps(HELLO_EVENT).decode()
    work = ctx.scratch("prewarm")
    calls = 5 if ctx.quick else 40
    results = []
    # PERF(bench): --quick (a smoke inside `make test`, on a time budget) does Python only.
    hellos = {"python": PY_HANDLER} if ctx.quick else HELLOS
    for lang, code in hellos.items():
        name = f"prewarm-{lang}"
        nimbus.deploy(name, lang, code=code)
        sides: dict[str, list[float]] = {"1": [], "0": []}
        cpu: dict[str, list[float]] = {"1": [], "0": []}
        ready: list[str] = []
        for rep in range(1 if ctx.quick else 3):
            for prewarm in ("1", "0") if rep % 2 == 0 else ("0", "1"):
                data_dir = work / f"{lang}-{prewarm}-{rep}"  # a worker of its own, each time
                got = spawn("prewarmed", str(nimbus.data_dir), str(data_dir), name, event,
                            str(calls), prewarm)  # fmt: skip
                sides[prewarm].append(got["median_ms"])
                cpu[prewarm].append(got["cpu_ms_per_call"])
                if prewarm == "1":
                    ready.append(f"{got['ready']}/{got['calls']}")
        made = Side(f"{lang}, instance made on the call", sides["0"])
        results.append(
            Result(
                key=f"prewarm-{lang}",
                title=f"In-process: first invoke of a pre-warmed {lang} hello vs a fresh "
                "instance made on the call",
                unit="ms",
                higher_is_better=False,
                a=Side(f"{lang}, pre-warmed (module loaded)", sides["1"]),
                b=made,
                target=TARGET,
                notes=[
                    f"median of {calls} calls per repetition through the gateway's invoke "
                    "path, one every ~30 ms",
                    f"calls that found a pre-warmed instance ready: {', '.join(ready)}",
                ],
            )
        )
        cpu_title = (f"In-process: CPU per call of a {lang} hello, pre-warmed (refill "
                     "included) vs a fresh instance made on the call")  # fmt: skip
        pre = Side(f"{lang}, pre-warmed, background refill included", cpu["1"])
        results.append(Result(key=f"prewarm-{lang}-cpu", title=cpu_title, unit="ms CPU/call",
                              higher_is_better=False, a=pre, b=Side(made.label, cpu["0"]),
                              notes=[CPU_NOTE]))  # fmt: skip
    return results


COMPARISON = Comparison(
    key="prewarm",
    title="Pre-warmed instances: first invoke in-process",
    run=run,
    uses_servers=True,
)

"""wasmtime's pooling allocator vs its on-demand allocator: Python and JavaScript hellos
under load, a fresh instance per call on both sides (issue 19).

Two real servers, identical but for `POOLING`, each with the one-line hellos
deployed through the API; wrk loads them in alternating order at 16
connections. Rows per language: throughput, p99, the server's CPU per call and
the kernel's share of that CPU (where mapping, faulting and unmapping each
instance's memory shows).
"""

from __future__ import annotations

import contextlib

import orjson

from .. import load
from ..context import BenchContext
from ..model import Comparison, Result, Target
from ..servers import NimbusServer
from ..workloads import HELLO_EVENT, JS_HANDLER, PY_HANDLER

CONNECTIONS = 16
POOLED, ON_DEMAND = "pooling", "on-demand"
VARIANTS = {POOLED: {}, ON_DEMAND: {"POOLING": "false"}}
HELLOS = {"python": PY_HANDLER, "javascript": JS_HANDLER}
# Issue 19's targets for a fresh instance per call at 16 connections.
RPS_TARGETS = {"python": Target(">=", 1000, on="a"), "javascript": Target(">=", 2000, on="a")}
P99_TARGETS = {"python": Target("<=", 50, on="a")}
KERNEL_TARGET = Target("<=", 20, on="a")


def run(ctx: BenchContext) -> list[Result]:
    p = ctx.params
    with contextlib.ExitStack() as stack:
        servers = {}
        for variant, env in VARIANTS.items():
            server = NimbusServer(ctx.scratch(f"pool-{variant}"), ctx.log_dir,
                                  name=f"nimbus-{variant}", **env)  # fmt: skip
            stack.callback(server.stop)
            servers[variant] = server.start()
        body = orjson.dumps(HELLO_EVENT)
        targets: dict[str, dict[str, load.LoadTarget]] = {}
        for lang, code in HELLOS.items():
            targets[lang] = {}
            for variant, server in servers.items():
                server.deploy(f"hello-{lang}", lang, code=code)
                auth = {"Authorization": f"Bearer {server.api_key}"}
                target = load.LoadTarget(server.invoke_url(f"hello-{lang}"), auth, body, server)
                load.check(target, f"{lang} on {variant}")
                targets[lang][variant] = target
        results: list[Result] = []
        for lang, pair_targets in targets.items():
            load.warm_up(pair_targets, p.load_warmup_s)
            runs = load.alternate(pair_targets, connections=CONNECTIONS,
                                  duration_s=p.pool_duration_s, reps=p.pool_reps)  # fmt: skip
            results += _rows(lang, runs)
        return results


def _rows(lang: str, runs: dict[str, list[load.LoadRun]]) -> list[Result]:
    pair = load.Pair(
        key=f"pool-{lang}-{CONNECTIONS}c",
        title=f"{lang} hello, pooling vs on-demand allocator, {load.conns_text(CONNECTIONS)}",
        connections=CONNECTIONS,
        a_label=f"Nimbus {lang} hello, pooling allocator",
        a=runs[POOLED],
        b_label=f"Nimbus {lang} hello, on-demand allocator",
        b=runs[ON_DEMAND],
        panel=f"allocators, {load.conns_text(CONNECTIONS)}",
    )
    rows = pair.rows(target=RPS_TARGETS.get(lang))
    rows[0].notes.append("a fresh instance per call on both sides; ratio = pooling / on-demand")
    if lang in P99_TARGETS:
        rows[2].target = P99_TARGETS[lang]
    extra = [
        pair.cpu_row(
            f"pool-{lang}-cpu", f"{lang} hello: server CPU per call, pooling vs on-demand"
        ),
        pair.kernel_row(
            f"pool-{lang}-kernel",
            f"{lang} hello: kernel share of server CPU, pooling vs on-demand",
            KERNEL_TARGET,
        ),
    ]
    return rows + [row for row in extra if row is not None]


COMPARISON = Comparison(
    key="pooling",
    title="Pooling allocator vs on-demand: Python and JavaScript hellos under load",
    run=run,
    uses_servers=True,
)

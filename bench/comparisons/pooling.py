"""wasmtime's pooling allocator vs its on-demand allocator: Python and JavaScript hellos
under load, a fresh instance per call on both sides (issue 19); then the same hellos
with opt-in warm reuse against the bare Falcon echo.

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
POOLED, RELEASED, ON_DEMAND, ECHO = "pooling", "pooling-released", "on-demand", "echo"
VARIANTS = {
    POOLED: {},  # the default: 16 MiB of each memory slot kept resident
    RELEASED: {"POOL_KEEP_RESIDENT_KB": "0"},  # every page returned to the kernel: less memory
    ON_DEMAND: {"POOLING": "false"},
}
HELLOS = {"python": PY_HANDLER, "javascript": JS_HANDLER}
# Issue 19's targets for a fresh instance per call at 16 connections.
RPS_TARGETS = {"python": Target(">=", 1000, on="a"), "javascript": Target(">=", 2000, on="a")}
P99_TARGETS = {"python": Target("<=", 50, on="a")}
KERNEL_TARGET = Target("<=", 20, on="a")


def run(ctx: BenchContext) -> list[Result]:
    p = ctx.params
    with contextlib.ExitStack() as stack:
        servers = {}
        # PERF: --quick (a smoke inside `make test`) leaves out the keep-nothing server
        # and the reuse rows (tests/e2e/test_reuse.py covers reuse).
        variants = {k: v for k, v in VARIANTS.items() if not (ctx.quick and k == RELEASED)}
        for variant, env in variants.items():
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
            results += _rows(lang, runs, POOLED, "pooling allocator, 16 MiB kept resident")
            if RELEASED in runs:
                results += _rows(lang, runs, RELEASED, "pooling, nothing kept resident")
        if not ctx.quick:
            results += _reuse_rows(ctx, servers[POOLED], body)
        return results


def _reuse_rows(ctx: BenchContext, server: NimbusServer, body: bytes) -> list[Result]:
    """The same hellos with opt-in warm reuse, against the bare echo (issue 19: ≥ 0.5)."""
    baseline = ctx.baseline()
    auth = {"Authorization": f"Bearer {server.api_key}"}
    targets = {ECHO: load.LoadTarget(baseline.echo_url, auth, body, baseline)}
    for lang, code in HELLOS.items():
        server.deploy(f"warm-{lang}", lang, code=code, reuse=True)
        targets[lang] = load.LoadTarget(server.invoke_url(f"warm-{lang}"), auth, body, server)
        load.check(targets[lang], f"{lang} with reuse")
    load.warm_up(targets, ctx.params.load_warmup_s)
    runs = load.alternate(targets, connections=CONNECTIONS, duration_s=ctx.params.pool_duration_s,
                          reps=ctx.params.pool_reps)  # fmt: skip
    rows: list[Result] = []
    for lang in HELLOS:
        pair = _pair(f"reuse-{lang}", f"{lang} hello with warm reuse vs bare echo",
                     (f"Nimbus {lang} hello, reuse", runs[lang]),
                     ("bare Falcon echo", runs[ECHO]))  # fmt: skip
        rows += pair.rows(target=Target(">=", 0.5))
        cpu = pair.cpu_row(f"reuse-{lang}-cpu", f"{lang} hello with reuse: server CPU per call")
        title = f"{lang} hello with reuse: context switches per call"
        switches = pair.switches_row(f"reuse-{lang}-switches", title)
        rows += [row for row in (cpu, switches) if row is not None]
    return rows


def _pair(key: str, title: str, a: tuple[str, list], b: tuple[str, list]) -> load.Pair:
    conns = load.conns_text(CONNECTIONS)
    return load.Pair(key=f"{key}-{CONNECTIONS}c", title=f"{title}, {conns}",
                     connections=CONNECTIONS, a_label=a[0], a=a[1], b_label=b[0], b=b[1],
                     panel=f"allocators, {conns}")  # fmt: skip


def _rows(lang: str, runs: dict[str, list[load.LoadRun]], variant: str, label: str
          ) -> list[Result]:  # fmt: skip
    pair = _pair(f"{variant}-{lang}", f"{lang} hello, {label} vs on-demand allocator",
                 (f"Nimbus {lang} hello, {label}", runs[variant]),
                 (f"Nimbus {lang} hello, on-demand allocator", runs[ON_DEMAND]))  # fmt: skip
    rows = pair.rows(target=RPS_TARGETS.get(lang))
    rows[0].notes.append("a fresh instance per call on both sides; ratio = pooling / on-demand")
    if lang in P99_TARGETS:
        rows[2].target = P99_TARGETS[lang]
    kernel_title = f"{lang} hello: kernel share of server CPU, {label}"
    extra = [
        pair.cpu_row(f"{variant}-{lang}-cpu", f"{lang} hello: server CPU per call, {label}"),
        pair.kernel_row(f"{variant}-{lang}-kernel", kernel_title, KERNEL_TARGET),
    ]
    return rows + [row for row in extra if row is not None]


COMPARISON = Comparison(
    key="pooling",
    title="Pooling allocator vs on-demand: Python and JavaScript hellos under load",
    run=run,
    uses_servers=True,
)

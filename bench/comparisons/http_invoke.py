"""Gateway overhead: invoking a tiny WASM echo over HTTP vs the bare Falcon JSON echo.

Both servers run side by side with the same gunicorn worker settings; wrk
loads them in alternating order, repetition by repetition, so drift in the
machine's load hits both sides alike. The full run adds the same echo under
gunicorn's own defaults (one sync worker) as a context row (issue 19).
"""

from __future__ import annotations

import orjson

from .. import load
from ..context import BenchContext
from ..model import Comparison, Result, Target
from ..wasm import EVENT

THROUGHPUT_TARGET = Target(">=", 0.70)  # issue 3: ≥ 0.70 of the bare echo at 16 connections
TARGET_AT_CONNECTIONS = 16


def check_echo(url: str, headers: dict[str, str], what: str) -> None:
    """One request first: the answer must be the event itself."""
    answer = load.check(load.LoadTarget(url, headers, EVENT), what)
    if answer != orjson.loads(EVENT):
        raise RuntimeError(f"{what} did not echo the event: {answer!r:.500}")


def ready_echoes(targets: dict[str, load.LoadTarget], warmup_s: float) -> None:
    """Every target must echo the event once; then all are warmed up."""
    for name, target in targets.items():
        check_echo(target.url, target.headers, name)
    load.warm_up(targets, warmup_s)


def run(ctx: BenchContext) -> list[Result]:
    baseline = ctx.baseline()
    nimbus = ctx.nimbus()
    function = ctx.echo_function()
    auth = {"Authorization": f"Bearer {nimbus.api_key}"}
    targets = {
        "nimbus": load.LoadTarget(nimbus.invoke_url(function), auth, EVENT, nimbus),
        # NOTE: the echo ignores the key, but wrk sends the same bytes to both.
        "echo": load.LoadTarget(baseline.echo_url, auth, EVENT, baseline),
    }
    if not ctx.quick:  # PERF(bench): context only; the quick smoke keeps its time budget
        defaults = ctx.defaults_echo()  # the echo under gunicorn's own defaults
        targets["defaults"] = load.LoadTarget(defaults.echo_url, auth, EVENT, defaults)
    p = ctx.params
    ready_echoes(targets, p.wrk_warmup_s)

    settings = baseline.worker_settings()
    results: list[Result] = []
    for connections in p.http_connections:
        runs = load.alternate(
            targets, connections=connections, duration_s=p.wrk_duration_s, reps=p.http_reps
        )
        pair = load.Pair(
            key=f"http-invoke-{connections}c",
            title=f"HTTP invoke vs bare echo, {load.conns_text(connections)}",
            connections=connections,
            a_label="Nimbus invoke (echo.wasm)",
            a=runs["nimbus"],
            b_label="bare Falcon echo",
            b=runs["echo"],
            panel=load.conns_text(connections),
        )
        details = {
            "connections": connections,
            "wrk_duration_s": p.wrk_duration_s,
            "worker_settings": settings,
            "wrk": load.wrk_details(runs),
        }
        target = THROUGHPUT_TARGET if connections == TARGET_AT_CONNECTIONS else None
        results += pair.rows(target=target, details=details)
        title = f"HTTP invoke vs bare echo, {load.conns_text(connections)}: context switches"
        switches = pair.switches_row(f"http-invoke-{connections}c-switches", title)
        results += [switches] if switches is not None else []
        if "defaults" in runs:
            results += _defaults_rows(connections, runs)
    return results


def _defaults_rows(connections: int, runs: dict[str, list[load.LoadRun]]) -> list[Result]:
    """Issue 19: the echo under Nimbus's gunicorn settings vs gunicorn's defaults."""
    pair = load.Pair(
        key=f"echo-settings-{connections}c",
        title=f"bare echo: Nimbus's gunicorn settings vs gunicorn's defaults, "
        f"{load.conns_text(connections)}",
        connections=connections,
        a_label="bare Falcon echo, Nimbus's gunicorn settings",
        a=runs["echo"],
        b_label="bare Falcon echo, gunicorn defaults (1 sync worker)",
        b=runs["defaults"],
    )
    return pair.rows()[:1]  # throughput only: context, no target


COMPARISON = Comparison(
    key="http-invoke",
    title="Gateway overhead: HTTP invoke of a tiny WASM echo vs the bare Falcon echo",
    run=run,
    uses_servers=True,
)

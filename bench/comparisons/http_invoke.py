"""Gateway overhead: invoking a tiny WASM echo over HTTP vs the bare Falcon JSON echo.

Both servers run side by side with the same gunicorn worker settings; wrk
loads them in alternating order, repetition by repetition, so drift in the
machine's load hits both sides alike.
"""

from __future__ import annotations

import httpx
import orjson

from .. import wrk
from ..context import BenchContext
from ..model import Comparison, Result, Side, Target
from ..wasm import EVENT

THROUGHPUT_TARGET = Target(">=", 0.70)  # issue 3: ≥ 0.70 of the bare echo at 16 connections
TARGET_AT_CONNECTIONS = 16


JSON = {"Content-Type": "application/json"}


def check_echo(url: str, headers: dict[str, str], what: str) -> None:
    """One request first: a load test of an error page would measure nothing."""
    resp = httpx.post(url, content=EVENT, headers={**headers, **JSON}, timeout=60)
    if resp.status_code != 200:
        raise RuntimeError(f"{what} answered {resp.status_code}: {resp.text[:500]}")
    if orjson.loads(resp.content) != orjson.loads(EVENT):
        raise RuntimeError(f"{what} did not echo the event: {resp.text[:500]}")


def load_pair(
    ctx: BenchContext,
    targets: dict[str, tuple[str, dict[str, str]]],
    connections: int,
) -> dict[str, list[wrk.WrkResult]]:
    """Run wrk against every target, `http_reps` times, alternating the order."""
    p = ctx.params
    runs: dict[str, list[wrk.WrkResult]] = {name: [] for name in targets}
    order = list(targets)
    for rep in range(p.http_reps):
        for name in order if rep % 2 == 0 else reversed(order):
            url, headers = targets[name]
            runs[name].append(
                wrk.run(
                    url,
                    body=EVENT,
                    headers=headers,
                    connections=connections,
                    duration_s=p.wrk_duration_s,
                )
            )
    return runs


def run(ctx: BenchContext) -> list[Result]:
    baseline = ctx.baseline()
    nimbus = ctx.nimbus()
    function = ctx.echo_function()
    auth = {"Authorization": f"Bearer {nimbus.api_key}"}
    targets = {
        "nimbus": (nimbus.invoke_url(function), auth),
        # NOTE: the echo ignores the key, but wrk sends the same bytes to both.
        "echo": (baseline.echo_url, auth),
    }
    for name, (url, headers) in targets.items():
        check_echo(url, headers, name)
    warmup = ctx.params.wrk_warmup_s
    for url, headers in targets.values():  # warm up thread pools, caches, sandboxes
        wrk.run(url, body=EVENT, headers=headers, connections=16, duration_s=warmup)

    settings = baseline.worker_settings()
    results: list[Result] = []
    for connections in ctx.params.http_connections:
        runs = load_pair(ctx, targets, connections)
        conns = f"{connections} connection{'' if connections == 1 else 's'}"
        nim, echo = runs["nimbus"], runs["echo"]
        a_label, b_label = "Nimbus invoke (echo.wasm)", "bare Falcon echo"
        details = {
            "connections": connections,
            "wrk_duration_s": ctx.params.wrk_duration_s,
            "worker_settings": settings,
            "wrk": {"nimbus": [r.as_dict() for r in nim], "echo": [r.as_dict() for r in echo]},
        }
        notes = _error_notes(runs)
        throughput = Result(
            key=f"http-invoke-{connections}c-rps",
            title=f"HTTP invoke vs bare echo, {conns}: throughput",
            unit="req/s",
            higher_is_better=True,
            a=Side(a_label, [r.ok_requests_per_s for r in nim]),
            b=Side(b_label, [r.ok_requests_per_s for r in echo]),
            target=THROUGHPUT_TARGET if connections == TARGET_AT_CONNECTIONS else None,
            notes=notes,
            details=details,
        )
        results.append(throughput)
        for pct in ("p50", "p99"):
            results.append(
                Result(
                    key=f"http-invoke-{connections}c-{pct}",
                    title=f"HTTP invoke vs bare echo, {conns}: {pct} latency",
                    unit="ms",
                    higher_is_better=False,
                    a=Side(a_label, [getattr(r, f"{pct}_ms") for r in nim]),
                    b=Side(b_label, [getattr(r, f"{pct}_ms") for r in echo]),
                )
            )
    return results


def _error_notes(runs: dict[str, list[wrk.WrkResult]]) -> list[str]:
    notes = []
    for name, results in runs.items():
        bad = sum(r.non_2xx + r.socket_errors for r in results)
        total = sum(r.requests for r in results)
        if bad:
            notes.append(
                f"{name}: {bad} of {total} answers were errors (non-2xx or socket); "
                "throughput counts successful answers only"
            )
    return notes


COMPARISON = Comparison(
    key="http-invoke",
    title="Gateway overhead: HTTP invoke of a tiny WASM echo vs the bare Falcon echo",
    run=run,
    uses_servers=True,
)

"""Alias resolution's per-call cost: invoking through a weighted alias vs invoking plainly.

One echo function with two identical versions; the alias `bench` points at
version 1 and routes 50 % to version 2 (the most work an alias does per
call: a random draw and a walk over its weights). wrk loads both URLs on the
same server in alternating order, repetition by repetition.
"""

from __future__ import annotations

from .. import load
from ..context import BenchContext
from ..model import Comparison, Result, Target
from ..wasm import EVENT, b64, echo_module
from .http_invoke import ready_echoes

# Resolving an alias is a dict lookup and one draw: within the noise of a call.
RATIO_TARGET = Target(">=", 0.95)
CONNECTIONS = 16
FUNCTION = "alias-echo"


def _alias_function(ctx: BenchContext) -> str:
    nimbus = ctx.nimbus()
    name = ctx.deployed(FUNCTION, echo_module())
    with nimbus.client(timeout=600) as api:
        if api.get(f"/api/v1/functions/{name}/aliases/bench").status_code == 404:
            resp = api.put(
                f"/api/v1/functions/{name}",
                params={"wait": "true"},
                json={"artifact_base64": b64(echo_module()), "description": "v2"},
            )
            resp.raise_for_status()
            resp = api.post(
                f"/api/v1/functions/{name}/aliases",
                json={"name": "bench", "version": 1, "routing": {"2": 50}},
            )
            resp.raise_for_status()
    return name


def run(ctx: BenchContext) -> list[Result]:
    nimbus = ctx.nimbus()
    name = _alias_function(ctx)
    auth = {"Authorization": f"Bearer {nimbus.api_key}"}
    targets = {
        "alias": load.LoadTarget(nimbus.invoke_url(f"{name}:bench"), auth, EVENT, nimbus),
        "plain": load.LoadTarget(nimbus.invoke_url(name), auth, EVENT, nimbus),
    }
    p = ctx.params
    ready_echoes(targets, p.wrk_warmup_s)
    runs = load.alternate(
        targets, connections=CONNECTIONS, duration_s=p.wrk_duration_s, reps=p.http_reps
    )
    pair = load.Pair(
        key=f"alias-invoke-{CONNECTIONS}c",
        title=f"invoke through a 50/50 alias vs plain invoke, {load.conns_text(CONNECTIONS)}",
        connections=CONNECTIONS,
        a_label="alias invoke (name:bench)",
        a=runs["alias"],
        b_label="plain invoke",
        b=runs["plain"],
    )
    details = {
        "connections": CONNECTIONS,
        "wrk_duration_s": p.wrk_duration_s,
        "wrk": load.wrk_details(runs),
    }
    return pair.rows(target=RATIO_TARGET, details=details)


COMPARISON = Comparison(
    key="alias-invoke",
    title="Alias resolution: invoke through a weighted alias vs plain invoke",
    run=run,
    uses_servers=True,
)

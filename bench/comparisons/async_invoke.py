"""Async invocations: how fast they are accepted, and how long until they are done.

Accept rate: wrk posts the same event to `…/async` (202 once the invocation
is durable in the store) and to `…/invoke` (200 with the result), in
alternating order. Completion latency: one caller submits, then polls
`GET /api/v1/invocations/{id}` every 2 ms until the final state, against a
sync invoke's round trip.
"""

from __future__ import annotations

import statistics
import time

import httpx

from .. import wrk
from ..context import BenchContext
from ..model import Comparison, Result, Side
from ..wasm import EVENT

JSON = {"Content-Type": "application/json"}
CONNECTIONS = 16


def _drain(api: httpx.Client, paths: dict[str, str], timeout: float = 120) -> float:
    """Submit one more and wait for it: the queue in front of it is done too (FIFO)."""
    started = time.monotonic()
    resp = api.post(paths["async"], content=EVENT, headers=JSON)
    while resp.status_code == 429 and time.monotonic() - started < timeout:
        time.sleep(0.2)  # the flood filled the queue: wait for room, as a client would
        resp = api.post(paths["async"], content=EVENT, headers=JSON)
    if resp.status_code != 202:
        raise RuntimeError(f"the drain's accept answered {resp.status_code}: {resp.text[:500]}")
    invocation_id = resp.json()["invocation_id"]
    while time.monotonic() - started < timeout:
        if api.get(f"/api/v1/invocations/{invocation_id}").json()["status"] == "succeeded":
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError("the async queue did not drain")


def _completion_ms(api: httpx.Client, paths: dict[str, str]) -> float:
    started = time.perf_counter()
    resp = api.post(paths["async"], content=EVENT, headers=JSON)
    if resp.status_code != 202:  # e.g. 429 right after the accept flood: say so
        raise RuntimeError(f"the drain's accept answered {resp.status_code}: {resp.text[:500]}")
    invocation_id = resp.json()["invocation_id"]
    while True:
        record = api.get(f"/api/v1/invocations/{invocation_id}").json()
        if record["status"] in ("succeeded", "failed", "timed_out"):
            if record["status"] != "succeeded":
                raise RuntimeError(f"async invocation ended {record['status']}: {record}")
            return (time.perf_counter() - started) * 1000
        time.sleep(0.002)


def _sync_ms(api: httpx.Client, paths: dict[str, str]) -> float:
    started = time.perf_counter()
    resp = api.post(paths["sync"], content=EVENT, headers=JSON)
    resp.raise_for_status()
    return (time.perf_counter() - started) * 1000


def run(ctx: BenchContext) -> list[Result]:
    nimbus = ctx.nimbus()
    function = ctx.echo_function()
    paths = {
        "async": f"/api/v1/functions/{function}/async",
        "sync": f"/api/v1/functions/{function}/invoke",
    }
    auth = {"Authorization": f"Bearer {nimbus.api_key}"}
    p = ctx.params

    accepts, invokes, drains = [], [], []
    with nimbus.client() as api:
        for rep in range(p.http_reps):
            sides = [("async", accepts), ("sync", invokes)]
            for name, samples in sides if rep % 2 == 0 else reversed(sides):
                samples.append(
                    wrk.run(
                        nimbus.url + paths[name],
                        body=EVENT,
                        headers=auth,
                        connections=CONNECTIONS,
                        duration_s=p.wrk_duration_s,
                    )
                )
                if name == "async":
                    drains.append(_drain(api, paths))

        completion, sync = [], []
        calls = max(20, p.inproc_calls // 20)
        for rep in range(p.http_reps):
            sides = [(completion, _completion_ms), (sync, _sync_ms)]
            for samples, measure in sides if rep % 2 == 0 else reversed(sides):
                samples.append(statistics.median(measure(api, paths) for _ in range(calls)))

    accepted = sum(r.requests - r.non_2xx - r.socket_errors for r in accepts)
    return [
        Result(
            key="async-accept-rps",
            title=f"Async accept (durable 202) vs sync invoke, {CONNECTIONS} connections",
            unit="req/s",
            higher_is_better=True,
            a=Side("POST …/async (202)", [r.ok_requests_per_s for r in accepts]),
            b=Side("POST …/invoke (200)", [r.ok_requests_per_s for r in invokes]),
            notes=[
                f"{accepted} invocations accepted; each run's backlog drained in "
                f"{statistics.median(drains):.1f} s (median) before the next measurement",
                "an accept is two fsync'd store writes (marker, record with its event) here",
            ],
        ),
        Result(
            key="async-completion-ms",
            title="Async end-to-end (submit → poll → succeeded) vs a sync invoke round trip",
            unit="ms",
            higher_is_better=False,
            a=Side("async submit → succeeded", completion),
            b=Side("sync invoke", sync),
            notes=[f"one caller, {calls} calls per repetition, polling every 2 ms"],
        ),
    ]


COMPARISON = Comparison(
    key="async-invoke",
    title="Async invocations: accept rate and end-to-end completion latency",
    run=run,
    uses_servers=True,
)

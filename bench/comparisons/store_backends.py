"""Store backends: the same platform on the local store vs S3 (a real SeaweedFS).

Two fresh `nimbus serve` servers with the same worker settings, one on the
local-folder store and one on `s3://` against SeaweedFS on 127.0.0.1 (started
by the test suite's own helper, telemetry off). Deploy is create → ready of a
small `wasm` module (a distinct variant each time, so content addressing
cannot answer); invoke is the WAT echo under wrk at 16 connections. Both sides
alternate, repetition by repetition. Ratios are S3 / local.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.s3servers import seaweedfs_server

from .. import load
from ..context import BenchContext
from ..model import Comparison, Result, Side
from ..servers import NimbusServer
from ..wasm import EVENT, b64, echo_module
from .http_invoke import check_echo

CONNECTIONS = 16
SIDES = {"s3": "Nimbus on S3 (SeaweedFS)", "local": "Nimbus on the local store"}


def echo_variant(tag: str) -> bytes:
    """The echo module with a custom section naming `tag`: same code, new bytes."""
    name = b"nimbus-bench"
    payload = bytes([len(name)]) + name + tag.encode()
    assert len(payload) < 128  # one-byte LEB128 size
    return echo_module() + b"\x00" + bytes([len(payload)]) + payload


def _deploy_ms(server: NimbusServer, name: str) -> float:
    started = time.perf_counter()
    server.deploy_wasm(name, b64(echo_variant(name)))
    return (time.perf_counter() - started) * 1000


def run(ctx: BenchContext) -> list[Result]:
    p = ctx.params
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(1) as pool:
        local = NimbusServer(ctx.scratch("store-local"), ctx.log_dir, name="nimbus-local")
        stack.callback(local.stop)
        local_started = pool.submit(local.start)  # PERF: while SeaweedFS comes up
        s3 = stack.enter_context(seaweedfs_server(ctx.scratch("seaweedfs")))
        s3_env = {
            **s3.env(),
            "NIMBUS_STORE": f"s3://nimbus-bench/{uuid.uuid4().hex[:10]}",
            "NIMBUS_API_KEY": "bench-" + uuid.uuid4().hex,
        }
        remote = NimbusServer(ctx.scratch("store-s3"), ctx.log_dir, name="nimbus-s3", **s3_env)
        stack.callback(remote.stop)
        remote.start()
        local_started.result()
        servers = {"s3": remote, "local": local}

        targets = {}
        for side, server in servers.items():  # the first deploy fills engine and caches
            auth = {"Authorization": f"Bearer {server.api_key}"}
            _deploy_ms(server, f"warm-{side}")
            targets[side] = load.LoadTarget(server.invoke_url(f"warm-{side}"), auth, EVENT,
                                            server)  # fmt: skip
            check_echo(targets[side].url, auth, SIDES[side])

        deploys: dict[str, list[float]] = {side: [] for side in servers}
        for rep in range(p.store_reps):
            for side in servers if rep % 2 == 0 else reversed(servers):
                deploys[side].append(_deploy_ms(servers[side], f"deploy-{rep}-{side}"))

        load.warm_up(targets, p.load_warmup_s)
        runs = load.alternate(
            targets, connections=CONNECTIONS, duration_s=p.load_duration_s, reps=p.load_reps
        )

    pair = load.Pair(
        key=f"store-invoke-{CONNECTIONS}c",
        title=f"Invoke on S3 vs local store, {load.conns_text(CONNECTIONS)}",
        connections=CONNECTIONS,
        a_label=SIDES["s3"],
        a=runs["s3"],
        b_label=SIDES["local"],
        b=runs["local"],
        panel=f"store backends, {load.conns_text(CONNECTIONS)}",
    )
    details = {"wrk": load.wrk_details(runs)}
    deploy = Result(
        key="store-deploy",
        title="Deploy (create → ready of a small wasm module) on S3 vs local store",
        unit="ms",
        higher_is_better=False,
        a=Side(SIDES["s3"], deploys["s3"]),
        b=Side(SIDES["local"], deploys["local"]),
    )
    return [deploy, *pair.rows(details=details)]


COMPARISON = Comparison(
    key="store-backends",
    title="Store backends: deploy and invoke on the local store vs S3 (SeaweedFS)",
    run=run,
    uses_servers=False,  # its servers are its own, stopped when it returns
)

"""Replicas on one S3 store: 3 `nimbus serve` vs 1, counted at the store.

Each side is a set of fresh servers (`WORKERS=1` each, default settings
otherwise) on one SeaweedFS store, a new prefix per repetition, the sides
alternating. SeaweedFS counts every request it answers
(`SeaweedFS_s3_request_total{type}`; a HEAD is a GET), so the store's own
counters say what the platform costs it, polling included:

- idle: requests per second with no traffic at all (the background runners'
  LIST polling, leases, flushes) once the empty queues' polls have backed off
  (full mode) — what a replica costs while nobody calls;
- async: a burst of invocations accepted round-robin over the replicas by 8
  callers, then run; throughput is accepted → all finished (the servers' own
  `nimbus_invocations_total{trigger="async"}`, read from /metrics, which
  costs the store nothing), and every store request in that window, idle
  polling included, divided by the invocations.

- a dispatcher's pass over a deep queue: the LIST of `queue/invocations/`
  (S3's pages hold 1,000 keys) with `replicas_backlog` invocations waiting
  against 100, through the store class the workers use.

On one 2-core machine three replicas share the same CPUs as one: the
throughput ratio says what coordination costs, not what more machines add.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families

from store import open_store
from store.invocations import InvocationRepo
from tests.s3servers import S3Server, seaweedfs_server

from ..context import BenchContext
from ..model import Comparison, Result, Side
from ..servers import NimbusServer
from ..wasm import EVENT, b64, echo_module

SIDES = (3, 1)
CALLERS = 8
FUNCTION = "replica-echo"
KINDS = ("GET", "PUT", "LIST", "DELETE")


def store_requests(s3: S3Server) -> Counter[str]:
    """Requests the store has answered since it started, by kind (every status code),
    and under `412` the conditional writes it refused (a claim another worker won)."""
    text = httpx.get(s3.metrics_url, timeout=10).text
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "SeaweedFS_s3_request_total":
                counts[sample.labels["type"]] += int(sample.value)
                if sample.labels["code"] == "412":
                    counts["412"] += int(sample.value)
    return counts


def async_finished(servers: list[NimbusServer]) -> int:
    """Async invocations finished (any status) by these servers' workers."""
    total = 0.0
    for server in servers:
        text = httpx.get(server.url + "/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if (
                    sample.name == "nimbus_invocations_total"
                    and sample.labels.get("trigger") == "async"
                ):
                    total += sample.value
    return int(total)


class _Run:
    """One side of one repetition: `count` fresh replicas on a new prefix."""

    def __init__(self, ctx: BenchContext, s3: S3Server, count: int, rep: int) -> None:
        env = {
            **s3.env(),
            "NIMBUS_STORE": f"s3://nimbus-bench/replicas-{uuid.uuid4().hex[:10]}",
            "NIMBUS_API_KEY": "bench-" + uuid.uuid4().hex,
            "PRELOAD_RUNTIMES": "false",  # only a wasm module runs here
        }
        names = [f"replica-{rep}-{count}-{i}" for i in range(count)]
        self.servers = [
            NimbusServer(ctx.scratch(n), ctx.log_dir, workers=1, name=n, **env) for n in names
        ]

    def __enter__(self) -> _Run:
        with ThreadPoolExecutor(len(self.servers)) as pool:
            list(pool.map(lambda s: s.start(), self.servers))
        self.servers[0].deploy_wasm(FUNCTION, b64(echo_module()))
        return self

    def __exit__(self, *exc: object) -> None:
        with ThreadPoolExecutor(len(self.servers)) as pool:
            list(pool.map(lambda s: s.stop(), self.servers))

    def submit(self, invocations: int) -> None:
        """Accept `invocations` async calls, round-robin over the replicas."""
        clients = [s.client() for s in self.servers]
        path = f"/api/v1/functions/{FUNCTION}/async"

        def accept(i: int) -> None:
            resp = clients[i % len(clients)].post(
                path, content=EVENT, headers={"Content-Type": "application/json"}
            )
            if resp.status_code != 202:
                raise RuntimeError(f"async accept answered {resp.status_code}: {resp.text}")

        try:
            with ThreadPoolExecutor(CALLERS) as pool:
                list(pool.map(accept, range(invocations)))
        finally:
            for client in clients:
                client.close()

    def wait_finished(self, invocations: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while async_finished(self.servers) < invocations:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {async_finished(self.servers)} of {invocations} ran")
            time.sleep(0.1)


def _per_second(counts: Counter[str], seconds: float) -> dict[str, float]:
    return {kind: counts[kind] / seconds for kind in KINDS}


def run(ctx: BenchContext) -> list[Result]:
    p = ctx.params
    idle: dict[int, list[dict[str, float]]] = {n: [] for n in SIDES}
    burst: dict[int, list[dict[str, float]]] = {n: [] for n in SIDES}
    with contextlib.ExitStack() as stack:
        s3 = stack.enter_context(seaweedfs_server(ctx.scratch("replicas-seaweedfs"), metrics=True))
        for rep in range(p.replicas_reps):
            for count in SIDES if rep % 2 == 0 else reversed(SIDES):
                with _Run(ctx, s3, count, rep) as replicas:
                    time.sleep(p.replicas_settle_s)
                    before = store_requests(s3)
                    time.sleep(p.replicas_idle_s)
                    idle[count].append(_per_second(store_requests(s3) - before, p.replicas_idle_s))
                    idle_rate = sum(idle[count][-1][kind] for kind in KINDS)

                    before, started = store_requests(s3), time.monotonic()
                    replicas.submit(p.replicas_invocations)
                    accepted = time.monotonic()
                    replicas.wait_finished(p.replicas_invocations)
                    seconds = time.monotonic() - started
                    used, n = store_requests(s3) - before, p.replicas_invocations
                    burst[count].append({
                        "throughput": n / seconds,
                        "accept_rate": n / (accepted - started),
                        "seconds": seconds,
                        **{kind: used[kind] / n for kind in KINDS},
                        # what the invocations added to the idle polling of the same replicas
                        "marginal": (sum(used[k] for k in KINDS) - idle_rate * seconds) / n,
                        "conflicts": used["412"] / n,
                    })  # fmt: skip
        passes = _queue_passes(s3, p.replicas_backlog, p.replicas_reps)
    return [*_results(idle, burst, p.replicas_invocations, p.replicas_idle_s), passes]


SHALLOW = 100


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _queue_passes(s3: S3Server, deep: int, reps: int) -> Result:
    """Time one LIST of the async queue (what every dispatcher pass starts with) at two
    depths: empty markers written straight into a scratch prefix."""
    stores = {}
    for depth in (deep, SHALLOW):
        with _environment(s3.env()):  # boto3 takes the credentials from it
            store = open_store(f"s3://nimbus-bench/backlog-{uuid.uuid4().hex[:8]}",
                               endpoint_url=s3.endpoint_url, region=s3.region)  # fmt: skip
        queue = InvocationRepo(store)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i, q=queue: q.put_queue_marker(1_700_000_000_000 + i,
                                                                f"inv_{i:08d}", "fn_bench"),
                          range(depth)))  # fmt: skip
        stores[depth] = queue
    samples: dict[int, list[float]] = {deep: [], SHALLOW: []}
    for rep in range(max(3, reps * 3)):
        for depth in (deep, SHALLOW) if rep % 2 == 0 else (SHALLOW, deep):
            started = time.perf_counter()
            listed = len(stores[depth].queue())  # what a dispatcher pass lists
            samples[depth].append((time.perf_counter() - started) * 1000)
            assert listed == depth, (listed, depth)
    return Result(
        key="replicas-queue-pass",
        title=f"One dispatcher pass over the async queue (LIST): {deep:,} waiting vs {SHALLOW}",
        unit="ms",
        higher_is_better=False,
        a=Side(f"{deep:,} waiting ({-(-deep // 1000)} LIST pages)", samples[deep]),
        b=Side(f"{SHALLOW} waiting (1 page)", samples[SHALLOW]),
        notes=[
            "every worker makes such a pass every ASYNC_POLL_SEC while the queue holds "
            "anything, and again after each invocation it finishes"
        ],
    )


def _side(label: str, runs: list[dict[str, float]], field: str | None = None) -> Side:
    values = [sum(r[k] for k in KINDS) if field is None else r[field] for r in runs]
    return Side(label, values)


def _median(runs: list[dict[str, float]], field: str) -> float:
    return statistics.median(r[field] for r in runs)


def _breakdown(runs: list[dict[str, float]]) -> str:
    return ", ".join(f"{kind} {statistics.median(r[kind] for r in runs):.2f}" for kind in KINDS)


def _results(idle, burst, invocations: int, idle_s: float) -> list[Result]:
    three, one = "3 replicas", "1 replica"
    details = {"idle_per_s": idle, "async_burst": burst}
    return [
        Result(
            key="replicas-async-throughput",
            title=f"Async throughput, {invocations} invocations accepted round-robin → all "
            f"finished: 3 replicas vs 1 on one S3 store",
            unit="invocations/s",
            higher_is_better=True,
            a=_side(three, burst[3], "throughput"),
            b=_side(one, burst[1], "throughput"),
            notes=[
                "WORKERS=1 per replica, all on the same 2 cores: this is the cost of "
                "coordinating through the store, not the gain of more machines",
                f"accept rate (202s/s, {CALLERS} callers): 3 replicas "
                f"{_median(burst[3], 'accept_rate'):.0f}, 1 replica "
                f"{_median(burst[1], 'accept_rate'):.0f}",
            ],
            details=details,
        ),
        Result(
            key="replicas-store-requests-per-invocation",
            title="Store requests per async invocation (counted by SeaweedFS, polling "
            "included): 3 replicas vs 1",
            unit="requests",
            higher_is_better=False,
            a=_side(three, burst[3]),
            b=_side(one, burst[1]),
            notes=[
                f"3 replicas: {_breakdown(burst[3])}",
                f"1 replica: {_breakdown(burst[1])}",
                "above the same replicas' idle polling: 3 replicas "
                f"{_median(burst[3], 'marginal'):.2f}, 1 replica "
                f"{_median(burst[1], 'marginal'):.2f}",
                "conditional writes refused (412: a claim another worker won): 3 replicas "
                f"{_median(burst[3], 'conflicts'):.2f}, 1 replica "
                f"{_median(burst[1], 'conflicts'):.2f} per invocation",
            ],
        ),
        Result(
            key="replicas-idle-store-requests",
            title=f"Store requests per second with no traffic ({idle_s:g} s): 3 replicas vs 1",
            unit="requests/s",
            higher_is_better=False,
            a=_side(three, idle[3]),
            b=_side(one, idle[1]),
            notes=[f"3 replicas: {_breakdown(idle[3])}", f"1 replica: {_breakdown(idle[1])}"],
        ),
    ]


COMPARISON = Comparison(
    key="replicas",
    title="Replicas on one S3 store: async throughput and store requests, 3 vs 1",
    run=run,
    uses_servers=False,  # its servers are its own, stopped when it returns
)

"""Prometheus metrics, right across gunicorn workers (prometheus-client's multiprocess mode).

`nimbus serve` empties a folder and points `PROMETHEUS_MULTIPROC_DIR` at it
in the gunicorn master, before any worker forks or imports prometheus_client
(gateway/serve.py `prepare_metrics_dir`); every worker then writes its samples to its
own files there, `/metrics` sums them with a `MultiProcessCollector`, and
the master removes a dead worker's live gauges (`mark_worker_dead`).
Without that folder (in-process tests) a `Metrics` keeps a private registry.

Gauges that describe one worker (running guests, cached artifacts) are
summed over live workers (`livesum`); the async queue depth is one
platform-wide number that any worker may measure (`livemostrecent`).
"""

from __future__ import annotations

import bisect
import collections
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .recorder import THROTTLED, InvocationOutcome

ENV = "PROMETHEUS_MULTIPROC_DIR"
_CHILD_CACHE = 10_000  # labelled series kept at hand
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
BUILD_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TICK_LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)

_SANDBOX_GAUGES = {
    "running": ("nimbus_sandbox_running", "guests running now"),
    "slots": ("nimbus_sandbox_slots", "guests the workers may run at once (MAX_CONCURRENT each)"),
    "queued": ("nimbus_sandbox_queued", "callers waiting for a free slot"),
    "stuck_threads": ("nimbus_sandbox_stuck_threads", "guest threads blocked past their deadline"),
    "idle_instances": ("nimbus_sandbox_idle_instances", "warm instances kept for reuse"),
    "prewarmed_instances": (
        "nimbus_sandbox_prewarmed_instances",
        "fresh instances made ahead of calls, each for one call",
    ),
    "cached_artifacts": ("nimbus_sandbox_cached_artifacts", "artifacts loaded in memory"),
    "native_lanes": (
        "nimbus_sandbox_native_lanes",
        "workers whose guarded guest calls run on native lanes (liblane.so), not Python threads",
    ),
    "native_idle": ("nimbus_native_containers_idle", "warm native-function containers, idle"),
    "native_busy": ("nimbus_native_containers_busy", "native-function containers running a call"),
}


def _observe_all(histogram: Histogram, amounts: list[float]) -> None:
    """`histogram.observe(a)` for each of `amounts`, each bucket and the sum written once.

    PERF: in multiprocess mode every observe is two locked writes to the worker's
    mmap file (and a getpid() each); a flush observes one histogram per function
    with hundreds of durations. Falls back to `observe` if prometheus_client's
    histogram no longer keeps its bounds and values as it does (0.2x)."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for amount in amounts:
            histogram.observe(amount)
        return
    per_bucket = [0] * len(bounds)
    for amount in amounts:
        per_bucket[bisect.bisect_left(bounds, amount)] += 1  # the first bound >= amount
    total.inc(sum(amounts))
    for bucket, n in zip(buckets, per_bucket, strict=True):
        if n:
            bucket.inc(n)


def mark_worker_dead(path: Path, pid: int) -> None:
    """In the master when a worker exits (even killed): drop its live gauges."""
    mark_process_dead(pid, str(path))


class Metrics:
    """The platform's metrics for one worker process."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        if multiprocess_dir is not None:
            if values.ValueClass is values.MutexValue:
                raise RuntimeError(f"{ENV} must be set before prometheus_client is imported")
            own = None  # samples go to files; the collector reads every worker's
            self._registry = CollectorRegistry()
            MultiProcessCollector(self._registry, path=str(multiprocess_dir))
        else:
            own = self._registry = CollectorRegistry()
        self.invocations = Counter(
            "nimbus_invocations",
            "finished invocations",
            ["function", "runtime", "trigger", "status", "error_code"],
            registry=own,
        )
        self.duration = Histogram(
            "nimbus_invocation_duration_seconds",
            "guest run time of an invocation",
            ["function", "runtime"],
            buckets=DURATION_BUCKETS,
            registry=own,
        )
        # Per version (what a canary or an alias's weights change): kept apart from
        # nimbus_invocations so that its series do not multiply by trigger and error.
        self.version_invocations = Counter(
            "nimbus_version_invocations",
            "finished invocations per function version",
            ["function", "version", "status"],
            registry=own,
        )
        self.cold_starts = Counter(
            "nimbus_cold_starts",
            "invocations that loaded their artifact in the worker",
            ["function", "runtime"],
            registry=own,
        )
        self.builds = Histogram(
            "nimbus_build_duration_seconds",
            "build time, claim to outcome",
            ["runtime", "outcome"],
            buckets=BUILD_BUCKETS,
            registry=own,
        )
        self.cache_hits = Counter(
            "nimbus_artifact_cache_hits",
            "artifact loads answered from worker memory",
            registry=own,
        )
        self.cache_misses = Counter(
            "nimbus_artifact_cache_misses",
            "artifact loads from disk, store or wasm",
            registry=own,
        )
        self.sandbox = {
            key: Gauge(name, doc, multiprocess_mode="livesum", registry=own)
            for key, (name, doc) in _SANDBOX_GAUGES.items()
        }
        self.async_queue_depth = Gauge(
            "nimbus_async_queue_depth",
            "queued async invocations, platform-wide",
            multiprocess_mode="livemostrecent",
            registry=own,
        )
        self.log_entries = Counter(
            "nimbus_log_entries_written",
            "invocation log entries written to the store",
            registry=own,
        )
        self.log_entries_dropped = Counter(
            "nimbus_log_entries_dropped",
            "log entries given up after the store refused them",
            registry=own,
        )
        self.log_batches = Counter(
            "nimbus_log_batches_written", "log batch objects written", registry=own
        )
        self.schedule_ticks = Counter(
            "nimbus_schedule_ticks",
            "schedule ticks this worker offered, by outcome: fired (as a queued or a failed "
            "invocation), taken (another worker fired it), missed (a stretch of ticks found "
            "too late, skipped)",
            ["outcome"],
            registry=own,
        )
        self.schedule_lateness = Histogram(
            "nimbus_schedule_tick_lateness_seconds",
            "a fired tick's invocation created_at minus its scheduled time",
            buckets=TICK_LATENESS_BUCKETS,
            registry=own,
        )
        self.alert_changes = Counter(
            "nimbus_alert_changes",
            "alert rule state changes this worker decided, by the state entered",
            ["state"],
            registry=own,
        )
        self.alert_deliveries = Counter(
            "nimbus_alert_deliveries",
            "alert webhook delivery attempts, by outcome: delivered, retrying, failed "
            "(attempts exhausted), dropped (too many owed)",
            ["outcome"],
            registry=own,
        )
        # NOTE: every outcome these can count is a series from the start, at 0. A series
        # that first appears at 1 loses that 1 to rate() and increase() (no earlier sample
        # to compare with): the first missed tick or failed alert delivery never showed.
        for counter, outcomes in (
            (self.schedule_ticks, ("fired", "failed", "taken", "missed")),
            (self.alert_changes, ("ok", "pending", "firing")),
            (self.alert_deliveries, ("delivered", "retrying", "failed", "dropped")),
        ):
            for outcome in outcomes:
                counter.labels(outcome)
        self._children: dict[tuple, object] = {}
        self._seen_hits = 0
        self._seen_misses = 0

    # -- what the platform reports ------------------------------------------

    def observe_invocations(self, outcomes: list[InvocationOutcome]) -> None:
        """Count a flush's worth of outcomes (each counter series once per flush)."""
        # PERF: counts are summed per series first; labelled children are cached.
        counts: collections.Counter[tuple] = collections.Counter()
        per_version: collections.Counter[tuple] = collections.Counter()
        colds: collections.Counter[tuple] = collections.Counter()
        durations: collections.defaultdict[tuple, list[float]] = collections.defaultdict(list)
        for o in outcomes:
            counts[(o.function_name, o.runtime, o.trigger, o.status, o.error_code or "")] += 1
            per_version[(o.function_name, str(o.version), o.status)] += 1
            if o.status == THROTTLED:
                continue  # it never ran: no duration
            fn = (o.function_name, o.runtime)
            durations[fn].append(o.duration_ms / 1000)
            if o.cold_start:
                colds[fn] += 1
        for fn, seconds in durations.items():
            _observe_all(self._child(self.duration, fn), seconds)
        for metric, summed in (
            (self.invocations, counts),
            (self.version_invocations, per_version),
            (self.cold_starts, colds),
        ):
            for labels, n in summed.items():
                self._child(metric, labels).inc(n)

    def _child(self, metric, labels: tuple):
        child = self._children.get((metric, labels))
        if child is None:
            if len(self._children) > _CHILD_CACHE:
                self._children.clear()
            child = self._children[(metric, labels)] = metric.labels(*labels)
        return child

    def observe_build(self, runtime: str, outcome: str, seconds: float) -> None:
        self.builds.labels(runtime, outcome).observe(seconds)

    def observe_tick(self, outcome: str, lateness_sec: float | None) -> None:
        self.schedule_ticks.labels(outcome).inc()
        if lateness_sec is not None:
            self.schedule_lateness.observe(max(0.0, lateness_sec))

    def observe_alert(self, kind: str, outcome: str) -> None:
        """`kind` state (`outcome`: ok|pending|firing) or delivery (delivered|retrying|…)."""
        (self.alert_changes if kind == "state" else self.alert_deliveries).labels(outcome).inc()

    def set_async_queue_depth(self, depth: int) -> None:
        """The number of queued async invocations, as last measured by any worker."""
        self.async_queue_depth.set(depth)

    def sample_sandbox(self, stats: dict[str, int]) -> None:
        """Copy this worker's `Sandbox.stats()` into the gauges and cache counters."""
        for key, gauge in self.sandbox.items():
            gauge.set(stats.get(key, 0))
        hits, misses = stats.get("cache_hits", 0), stats.get("cache_misses", 0)
        if hits > self._seen_hits:
            self.cache_hits.inc(hits - self._seen_hits)
        if misses > self._seen_misses:
            self.cache_misses.inc(misses - self._seen_misses)
        self._seen_hits, self._seen_misses = hits, misses

    # -- reading -------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text of every worker, and its content type."""
        return generate_latest(self._registry), CONTENT_TYPE_LATEST

    def value(self, name: str) -> float:
        """One unlabelled sample summed over every worker (e.g. guests running now)."""
        for family in self._registry.collect():
            for sample in family.samples:
                if sample.name == name and not sample.labels:
                    return sample.value
        return 0.0

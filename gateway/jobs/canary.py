"""Canary steps: after each interval, promote the alias's new version or roll it back.

Every worker looks every second (`PeriodicJobs`); a due job is claimed with
the lease primitive, so exactly one worker of any replica decides a step. The
decision reads the windowed stats of the canary version alone since its step
began (function errors, timeouts and memory kills count; throttles do not):

- fewer than `min_invocations`: hold the step and look again an interval later;
- error rate above `max_error_rate` or p99 above `max_p99_ms`: roll back at once
  (the alias serves the old version alone) and say why;
- otherwise the next step's weight, or at 100 % the alias points at the new version.

The decision is written to the function record (the alias) first, then the job
record; a worker that dies between the two leaves a job whose step the alias
already passed, and the next claim only catches the job up.
"""

from __future__ import annotations

import contextlib
import logging
import time

from store import errors
from store.canaries import CanaryJob, CanaryRepo
from store.functions import FunctionRepo
from store.history import HistoryRepo
from store.leases import LeaseLost, Leases
from store.records import CanaryEvent, CanaryStatus, Function, HistoryEntry, now

from ..telemetry import histogram
from ..telemetry.window_query import WindowQuery

log = logging.getLogger("nimbus.canary")
LEASE_SEC = 30.0


class CanaryRunner:
    def __init__(
        self,
        repo: FunctionRepo,
        canaries: CanaryRepo,
        history: HistoryRepo,
        leases: Leases,
        query: WindowQuery,
    ) -> None:
        self.repo = repo
        self.canaries = canaries
        self.history = history
        self.leases = leases
        self.query = query

    def scan(self) -> int:
        """Decide every due step this worker can claim; how many it decided."""
        decided = 0
        for key in list(self.canaries.keys()):
            try:
                claim = self.leases.claim(key, CanaryJob, duration_sec=LEASE_SEC, ready=_is_due)
            except errors.NotFound:
                continue
            if claim is None:
                continue
            try:
                decided += self._step(claim)
            except LeaseLost:
                log.warning("lost the canary lease of %s", key)
        return decided

    def _step(self, claim) -> int:
        job: CanaryJob = claim.record
        try:
            fn, _ = self.repo.get(job.function_id)
        except errors.NotFound:
            self._end(claim)
            return 0
        alias = fn.aliases.get(job.alias)
        canary = alias.canary if alias else None
        if canary is None or canary.status != CanaryStatus.progressing:
            self._end(claim)
            return 0
        if canary.step != job.step:  # decided before a crash: catch the job up
            self.leases.finish(claim, lambda j: _due(j, canary.step, canary.interval_sec))
            return 0
        window = self.query.totals(fn.id, canary.step_started_at.timestamp(), time.time(),
                                   version=canary.version)  # fmt: skip
        rate = window.errors / window.invocations if window.invocations else None
        p99 = histogram.quantile(window.latency, 0.99)
        event = CanaryEvent(step=canary.step, weight=canary.weight, decision="held",
                            invocations=window.invocations, errors=window.errors,
                            error_rate=rate, p99_ms=p99,
                            decided_by=self.leases.owner)  # fmt: skip
        if window.invocations < canary.min_invocations:
            event.reason = f"{window.invocations} of {canary.min_invocations} invocations"
        elif rate is not None and rate > canary.max_error_rate:
            event.decision = "rolled_back"
            event.reason = f"error rate {rate:.3f} > {canary.max_error_rate:g}"
        elif canary.max_p99_ms is not None and p99 is not None and p99 > canary.max_p99_ms:
            event.decision = "rolled_back"
            event.reason = f"p99 {p99:.1f} ms > {canary.max_p99_ms:g} ms"
        else:
            event.decision = "promoted"
        fn = self.repo.update_function(fn.id, lambda f: _apply(f, job, event))
        canary = fn.aliases[job.alias].canary
        if canary.status == CanaryStatus.progressing:
            self.leases.finish(claim, lambda j: _due(j, canary.step, canary.interval_sec))
        else:
            self._end(claim)
            self.history.append(fn.id, HistoryEntry(
                action=f"canary_{canary.status}", alias=job.alias,
                from_version=canary.from_version if canary.status == "promoted" else canary.version,
                to_version=canary.version if canary.status == "promoted" else canary.from_version,
                actor="canary", reason=canary.reason))  # fmt: skip
        return 1

    def _end(self, claim) -> None:
        with contextlib.suppress(LeaseLost):
            self.leases.finish(claim, lambda j: _due(j, j.step, 1e9))
        with contextlib.suppress(errors.NimbusError):
            self.canaries.store.delete(claim.key, if_match=claim.etag)


def _is_due(job: CanaryJob) -> bool:
    return job.next_due <= time.time()


def _due(job: CanaryJob, step: int, interval: float) -> None:
    job.step, job.next_due = step, time.time() + interval


def _apply(fn: Function, job: CanaryJob, event: CanaryEvent) -> Function | None:
    alias = fn.aliases.get(job.alias)
    canary = alias.canary if alias else None
    if canary is None or canary.status != CanaryStatus.progressing or canary.step != job.step:
        return None  # aborted, or decided already
    canary.history.append(event)
    stamp = now()
    if event.decision == "rolled_back":
        canary.status, canary.reason, canary.finished_at = (
            CanaryStatus.rolled_back,
            event.reason,
            stamp,
        )
        canary.weight = 0
        alias.version, alias.routing = canary.from_version, {}
    elif event.decision == "promoted":
        canary.step += 1
        if canary.step >= len(canary.steps) or canary.steps[canary.step] >= 100:
            canary.status, canary.finished_at, canary.weight = CanaryStatus.promoted, stamp, 100
            canary.reason = "every step passed"
            alias.version, alias.routing = canary.version, {}
        else:
            canary.weight = canary.steps[canary.step]
            alias.routing = {canary.version: canary.weight}
        canary.step_started_at = stamp
    else:  # held
        canary.step_started_at = stamp  # the same step again, counted afresh
    alias.updated_at = fn.updated_at = stamp
    return fn

"""Canary steps: after each interval, promote the alias's new version or roll it back.

Every worker looks every second (`PeriodicJobs`); a due job is claimed with
the lease primitive, so exactly one worker of any replica decides a step. The
decision reads the windowed stats of the canary version alone since its step
began (function errors, timeouts and memory kills count; throttles do not):

- fewer than `min_invocations`: hold the step (its calls keep adding up) and look
  again an interval later; after `idle_intervals` such intervals `on_idle` acts:
  keep holding with the reason shown, promote by time (unless the errors seen are
  already more than a full sample's budget), or roll back;
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
from datetime import UTC, datetime

from store import errors
from store.canaries import CanaryJob, CanaryRepo
from store.functions import FunctionRepo
from store.history import HistoryRepo
from store.leases import LeaseLost, Leases
from store.records import (
    CanaryEvent,
    CanaryState,
    CanaryStatus,
    CarriedCalls,
    Function,
    HistoryEntry,
    now,
)

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
        if (canary.step, canary.held) != (job.step, job.held):  # decided before a crash
            self.leases.finish(claim, lambda j: _due(j, canary))  # only catch the job up
            return 0
        looked = time.time()
        window = self.query.totals(fn.id, canary.step_started_at.timestamp(), looked,
                                   version=canary.version)  # fmt: skip
        calls = _own(window, canary.carried)
        rate = calls.errors / calls.invocations if calls.invocations else None
        p99 = histogram.quantile(calls.latency, 0.99)
        decision, reason = judge(canary, calls.invocations, calls.errors, p99)
        event = CanaryEvent(at=datetime.fromtimestamp(looked, UTC), step=canary.step,
                            weight=canary.weight, decision=decision,
                            invocations=calls.invocations, errors=calls.errors,
                            error_rate=rate, p99_ms=p99, reason=reason,
                            decided_by=self.leases.owner)  # fmt: skip
        carried = None
        if decision == "promoted":  # the next step begins now, mid-slot: note what is in it
            slot = self.query.totals(fn.id, looked, looked, version=canary.version)
            carried = CarriedCalls(invocations=slot.invocations, errors=slot.errors,
                                   latency=dict(slot.latency))  # fmt: skip
        applied: list[bool] = [False]

        def decide(current: Function) -> Function | None:
            changed = _apply(current, job, event, carried)
            applied[0] = changed is not None
            return changed

        fn = self.repo.update_function(fn.id, decide)
        alias = fn.aliases.get(job.alias)
        canary = alias.canary if alias else None
        if canary is not None and canary.status == CanaryStatus.progressing:
            self.leases.finish(claim, lambda j: _due(j, canary))
            return int(applied[0])
        self._end(claim)
        if applied[0]:
            self.history.append(fn.id, HistoryEntry(
                action=f"canary_{canary.status}", alias=job.alias,
                from_version=canary.from_version if canary.status == "promoted" else canary.version,
                to_version=canary.version if canary.status == "promoted" else canary.from_version,
                actor="canary", reason=canary.reason))  # fmt: skip
        return int(applied[0])

    def _end(self, claim) -> None:
        with contextlib.suppress(LeaseLost):
            self.leases.finish(claim, _never)
        with contextlib.suppress(errors.NimbusError):
            self.canaries.drop_claimed(claim.key, claim.etag)


def judge(canary: CanaryState, invocations: int, errors: int, p99: float | None) -> tuple[str, str]:
    """This step's decision ("held", "promoted" or "rolled_back") and why, from the canary
    version's own calls since the step began."""
    if invocations < canary.min_invocations:
        intervals = canary.held + 1
        seen = (f"{invocations} of {canary.min_invocations} invocations in {intervals} "
                f"interval{'s' if intervals > 1 else ''} of {canary.interval_sec:g} s")  # fmt: skip
        if intervals < canary.idle_intervals or canary.on_idle == "hold":
            return "held", f"waiting for traffic: {seen}"
        if canary.on_idle == "rollback":
            return "rolled_back", f"too little traffic to judge: {seen}"
        budget = canary.max_error_rate * canary.min_invocations
        if errors > budget:  # more than a full sample may hold: no time promotes that
            return "rolled_back", f"{errors} errors > {budget:g} allowed in a full step: {seen}"
        return "promoted", f"promoted by time: {seen}"
    rate = errors / invocations
    if rate > canary.max_error_rate:
        return "rolled_back", f"error rate {rate:.3f} > {canary.max_error_rate:g}"
    if canary.max_p99_ms is not None and p99 is not None and p99 > canary.max_p99_ms:
        return "rolled_back", f"p99 {p99:.1f} ms > {canary.max_p99_ms:g} ms"
    return "promoted", ""


def _is_due(job: CanaryJob) -> bool:
    return job.next_due <= time.time()


def _due(job: CanaryJob, canary: CanaryState) -> None:
    """The job follows the alias's canary: the next look is an interval away."""
    job.step, job.held, job.next_due = canary.step, canary.held, time.time() + canary.interval_sec


def _never(job: CanaryJob) -> None:
    job.next_due = time.time() + 1e9  # the record goes next; this only keeps a survivor idle


def _own(window, carried: CarriedCalls | None) -> CarriedCalls:
    """The step's own calls: the window since its first slot, less what the previous
    step had put in that slot."""
    if carried is None:
        return CarriedCalls(invocations=window.invocations, errors=window.errors,
                            latency=window.latency)  # fmt: skip
    latency = {b: n - carried.latency.get(b, 0) for b, n in window.latency.items()}
    return CarriedCalls(
        invocations=max(0, window.invocations - carried.invocations),
        errors=max(0, window.errors - carried.errors),
        latency={b: n for b, n in latency.items() if n > 0},
    )


def _apply(
    fn: Function, job: CanaryJob, event: CanaryEvent, carried: CarriedCalls | None
) -> Function | None:
    alias = fn.aliases.get(job.alias)
    canary = alias.canary if alias else None
    if canary is None or canary.status != CanaryStatus.progressing:
        return None  # aborted
    if (canary.step, canary.held) != (job.step, job.held):
        return None  # decided already
    last = canary.history[-1] if canary.history else None
    if event.decision == "held" and last and last.decision == "held" and last.step == event.step:
        canary.history[-1] = event  # NOTE: one held entry per step: a long wait stays small
    else:
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
        canary.held, canary.reason = 0, event.reason  # "" or "promoted by time: …"
        if canary.step >= len(canary.steps) or canary.steps[canary.step] >= 100:
            canary.status, canary.finished_at, canary.weight = CanaryStatus.promoted, stamp, 100
            canary.reason = "every step passed"
            alias.version, alias.routing = canary.version, {}
        else:
            canary.weight = canary.steps[canary.step]
            alias.routing = {canary.version: canary.weight}
        canary.step_started_at, canary.carried = event.at, carried
    else:  # held: the step's calls keep adding up from its start
        canary.held += 1
        canary.reason = event.reason
    alias.updated_at = fn.updated_at = stamp
    return fn

"""Invocation statistics that are right across workers and restarts.

Each worker keeps its running totals in memory and writes them to its own
object, `stats/workers/<writer>.json`, at every flush that changed them (and
at least every `heartbeat_sec`); only that worker writes it (compare-and-swap
on its own etag). `GET /api/v1/stats` sums `stats/total.json` and the worker
objects. So that worker objects do not pile up, a worker's totals are folded
into `stats/total.json` when it stops gracefully, and by any other worker
once its object has not been written for `fold_after_sec` (it was killed).

A fold takes three steps, each safe to crash after: (1) mark the worker
object `folding` with a write conditional on the etag it was read with — if
the worker wrote meanwhile it is alive and the fold is off, and a worker
whose object was marked notices on its next write (its etag no longer
matches) and carries on under a new writer id; (2) add it to the total with
compare-and-swap, naming the writer in `folded`; (3) delete the object. A
marked object is folded by the next worker that sees it; a writer named in
`folded` is never added twice, and readers skip its object.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from store import Store, errors
from store.records import FoldedStats as _FoldedStats
from store.records import WorkerStats as _WorkerStats
from store.records import now
from store.stats import StatsRepo

from .counts import OutcomeCounts
from .recorder import InvocationOutcome

log = logging.getLogger("nimbus.stats")

_CAS_ATTEMPTS = 50


# PERF: the in-memory totals are plain dataclasses (added to for every
# invocation, off the request path but under the GIL); pydantic validates and
# serializes them only inside the stored records below.


@dataclass(slots=True)
class Tally(OutcomeCounts):
    """Counts and durations of a set of invocations; tallies merge by addition."""

    total: int = 0  # ran (throttled calls never did)

    def add(self, o: InvocationOutcome) -> None:
        if self.count(o):
            self.total += 1

    def merge(self, other: Tally) -> None:
        self.total += other.total
        self.merge_counts(other)


# NOTE(security): a guest chooses its error `type`: kept short, and only the most
# frequent few are kept by name (the rest count as "other"), so stats stay small.
ERROR_TYPES_KEPT = 50
ERROR_TYPE_CHARS = 64
OTHER = "other"


def _count_bounded(counts: dict[str, int], name: str, n: int = 1) -> None:
    name = name[:ERROR_TYPE_CHARS]
    if name not in counts and len(counts) >= ERROR_TYPES_KEPT:
        name = OTHER
    counts[name] = counts.get(name, 0) + n


def _trim(counts: dict[str, int]) -> None:
    """Keep the most frequent `ERROR_TYPES_KEPT - 1` names; fold the rest into "other"."""
    if len(counts) <= ERROR_TYPES_KEPT:
        return
    named = sorted((k for k in counts if k != OTHER), key=lambda k: -counts[k])
    folded = sum(counts.pop(k) for k in named[ERROR_TYPES_KEPT - 1 :])
    counts[OTHER] = counts.get(OTHER, 0) + folded


@dataclass(slots=True)
class InvocationTotals:
    all: Tally = field(default_factory=Tally)
    by_runtime: dict[str, Tally] = field(default_factory=dict)
    by_error_type: dict[str, int] = field(default_factory=dict)  # platform error code
    by_function_error_type: dict[str, int] = field(default_factory=dict)  # the guest's own
    by_trigger: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.all.total == 0

    def add(self, o: InvocationOutcome) -> None:
        self.all.add(o)
        self.by_runtime.setdefault(o.runtime, Tally()).add(o)
        if o.error_code:
            self.by_error_type[o.error_code] = self.by_error_type.get(o.error_code, 0) + 1
        if o.error_type:
            _count_bounded(self.by_function_error_type, o.error_type)
        self.by_trigger[o.trigger] = self.by_trigger.get(o.trigger, 0) + 1

    def merge(self, other: InvocationTotals) -> None:
        self.all.merge(other.all)
        for runtime, tally in other.by_runtime.items():
            self.by_runtime.setdefault(runtime, Tally()).merge(tally)
        for mine, theirs in (
            (self.by_error_type, other.by_error_type),
            (self.by_function_error_type, other.by_function_error_type),
            (self.by_trigger, other.by_trigger),
        ):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count
        _trim(self.by_function_error_type)

    def plus(self, other: InvocationTotals) -> InvocationTotals:
        out = InvocationTotals()
        out.merge(self)
        out.merge(other)
        return out


# The durable records are the store's (store/records.py); their totals are ours.
WorkerStats = _WorkerStats[InvocationTotals]
FoldedStats = _FoldedStats[InvocationTotals]


class StatsBook:
    """This worker's totals (in memory and in its own object) and the sum over all workers."""

    def __init__(
        self, store: Store, writer: str, *, heartbeat_sec: float, fold_after_sec: float
    ) -> None:
        self.store = store
        self.repo = StatsRepo(store, InvocationTotals)
        self._base = writer
        self._generation = 0
        self.writer = writer
        self.heartbeat_sec = heartbeat_sec
        self.fold_after_sec = fold_after_sec
        self._lock = threading.Lock()
        self._pending = InvocationTotals()  # not yet in the store
        self._unsure: list[InvocationTotals] = []  # added by writes that got no answer
        self._written = InvocationTotals()  # what our object holds
        self._etag: str | None = None
        self._saved_at = 0.0

    def add_all(self, outcomes: list[InvocationOutcome]) -> None:
        with self._lock:
            for o in outcomes:
                self._pending.add(o)

    def save(self, *, force: bool = False) -> bool:
        """Write our object if anything changed or a heartbeat is due; True if written."""
        with self._lock:
            due = time.monotonic() - self._saved_at >= self.heartbeat_sec
            if self._pending.empty and not self._unsure and not (force or due):
                return False
            try:
                self._put(self._written.plus(self._unsaved()))
            except errors.Conflict:
                if self._adopt_landed_write():
                    self._put(self._written.plus(self._unsaved()))
                else:
                    # Our object is being folded into the total (we were stalled longer
                    # than fold_after_sec): what it held is counted there; carry on with
                    # the rest under a new writer id.
                    log.warning("stats of %s were folded while it ran; new writer id",
                                self.writer)  # fmt: skip
                    self._generation += 1
                    self.writer = f"{self._base}.{self._generation}"
                    self._etag = None
                    self._put(self._unsaved())
            self._saved_at = time.monotonic()
            return True

    def _unsaved(self) -> InvocationTotals:
        out = InvocationTotals()
        for part in [*self._unsure, self._pending]:
            out.merge(part)
        return out

    def _put(self, merged: InvocationTotals) -> None:
        try:
            self._etag = self.repo.put_worker(WorkerStats(writer=self.writer, totals=merged),
                                              self._etag)  # fmt: skip
        except errors.Unavailable:
            # NOTE: the write may still land (a store that hung answers it when it wakes):
            # keep what it added apart, so a later Conflict can tell it landed.
            self._unsure.append(self._pending)
            self._pending = InvocationTotals()
            raise
        self._written = merged
        self._unsure, self._pending = [], InvocationTotals()

    def _adopt_landed_write(self) -> bool:
        """True if our object holds what one of our unanswered writes held (it landed
        after all): our state moves to it. Taking that Conflict for a fold would count
        those outcomes twice."""
        if not self._unsure:
            return False
        try:
            record, etag = self.repo.worker(self.writer)
        except errors.NotFound:
            return False
        if record.folding:
            return False
        candidate = self._written
        for n, part in enumerate(self._unsure, 1):
            candidate = candidate.plus(part)
            if record.totals == candidate:
                self._written, self._etag, self._unsure = candidate, etag, self._unsure[n:]
                return True
        return False

    def retire(self) -> None:
        """On a graceful stop: write what is pending, then fold our object into the total."""
        self.save(force=True)
        with self._lock:
            writer, etag = self.writer, self._etag
        if etag is not None:
            record, _ = self.repo.worker(writer)
            self._fold(record, etag)

    def fold_stale(self) -> int:
        """Fold the objects of workers that stopped writing (killed) or whose fold
        was interrupted; how many were folded."""
        cutoff = now() - timedelta(seconds=self.fold_after_sec)
        folded = 0
        for record, etag in self.repo.workers():
            if record.writer == self.writer:
                continue
            if record.folding or record.updated_at < cutoff:
                folded += self._fold(record, etag)
        return folded

    def _fold(self, record: WorkerStats, etag: str) -> bool:
        if not record.folding:
            record.folding = True
            try:  # (1) take the object from its writer, unless it wrote meanwhile
                etag = self.repo.put_worker(record, etag)
            except (errors.Conflict, errors.NotFound):
                return False  # it is alive, or someone else is folding it
        gone = self._forgettable()
        for _ in range(_CAS_ATTEMPTS):  # (2) add it to the total, once
            total, total_etag = self.repo.total()
            if record.writer in total.folded:
                break
            total.totals.merge(record.totals)
            total.folded = {w: t for w, t in total.folded.items() if w not in gone}
            total.folded[record.writer] = now()
            total.updated_at = now()
            try:
                self.repo.put_total(total, total_etag)
                break
            except errors.Conflict:
                time.sleep(0.01)
        else:
            raise errors.Unavailable("too much contention folding stats")
        self.repo.delete_worker(record.writer)  # (3) nobody writes a marked object again
        return True

    def _forgettable(self) -> set[str]:
        """Folded writers whose objects are gone for good: the total need not name them."""
        total, etag = self.repo.total()
        if etag is None:
            return set()
        old = now() - timedelta(seconds=self.fold_after_sec)
        return {
            writer
            for writer, when in total.folded.items()
            if when < old and not self.repo.worker_exists(writer)
        }

    def totals(self) -> InvocationTotals:
        """The sum over every worker, live or gone (this worker's as of its last save)."""
        # Worker objects first, then the total: a fold between the two reads
        # is then seen in the total and its object skipped, never missed.
        records = [record for record, _ in self.repo.workers()]
        total, _ = self.repo.total()
        out = total.totals  # parsed just now: ours to add to
        for record in records:
            if record.writer not in total.folded:
                out.merge(record.totals)
        return out

"""The worker's invocation recorder: outcomes buffered in memory, flushed off the request path.

`record()` only appends to a deque (the request path pays for nothing
else). A background thread flushes every `interval_sec`, or sooner when
`batch_max` outcomes are waiting: it turns outcomes into metrics, stats and
one log batch per function, writes the batches, this worker's stats
object and its windowed stats of the minutes it touched (windows.py), and
refreshes the gauges (sandbox, async queue). The rare upkeep (the log
sweep, folding the stats of workers that were killed, rolling windowed stats
up into hours) is among the worker's periodic jobs (platform.recurring_jobs).
Readers call `flush()` first, so a worker's own outcomes are visible at once
and other workers' within one interval.

If the store refuses a log batch it is retried at the next flush; past
`retry_max_entries` waiting entries the oldest are dropped (and counted in
`nimbus_log_entries_dropped_total`). Stats stay in memory until written.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from store import errors

from ..background import BackgroundLoop, StepFailures
from .logs import InvocationLogs, entries_for
from .metrics import Metrics
from .recorder import THROTTLED, InvocationOutcome, InvocationRecorder
from .stats import StatsBook
from .window_rollup import WindowRollup
from .windows import WindowBook

log = logging.getLogger("nimbus.recorder")


@dataclass
class _Batch:
    function_id: str
    entries: list[dict] = field(default_factory=list)
    newest_us: int = 0


class OutcomeFlusher(InvocationRecorder):
    def __init__(
        self,
        logs: InvocationLogs,
        stats: StatsBook,
        metrics: Metrics,
        refresh_gauges: Callable[[], None],
        *,
        writer: str,
        windows: WindowBook | None = None,
        rollup: WindowRollup | None = None,
        interval_sec: float = 0.5,
        batch_max: int = 500,
        max_log_bytes: int = 64 * 1024,
        retry_max_entries: int = 100_000,
    ) -> None:
        self.logs = logs
        self.stats = stats
        self.metrics = metrics
        self.refresh_gauges = refresh_gauges
        self.writer = writer
        self.windows = windows
        self.rollup = rollup
        self.interval_sec = interval_sec
        self.batch_max = batch_max
        self.max_log_bytes = max_log_bytes
        self.retry_max_entries = retry_max_entries
        self._pending: collections.deque[InvocationOutcome] = collections.deque()
        self._disowned: set[str] = set()  # runs handed back at shutdown: not counted here
        self._retry: list[_Batch] = []
        self._seq = 0
        self._flush_lock = threading.Lock()
        self._log_failures = StepFailures(f"writing log batches of {writer}", log)
        self._stats_failures = StepFailures(f"writing stats of {writer}", log)
        self._window_failures = StepFailures(f"writing windowed stats of {writer}", log)
        self._loop = BackgroundLoop(
            "recorder-flush", self._flush_step, first_wait_sec=interval_sec,
            error_wait_sec=interval_sec,
        )  # fmt: skip
        self.flushes = 0  # flushes that wrote something, and what they wrote
        self.outcomes_flushed = 0
        self.batches_written = 0

    # -- the request path ------------------------------------------------------

    def record(self, outcome: InvocationOutcome) -> None:
        # PERF: one deque append (atomic under the GIL); all else is the flusher's.
        if self._disowned and outcome.invocation_id in self._disowned:
            return
        self._pending.append(outcome)
        if len(self._pending) >= self.batch_max:
            self._loop.wake()

    # -- lifecycle ---------------------------------------------------------------

    def disown(self, invocation_id: str) -> None:
        self._disowned.add(invocation_id)

    def start(self) -> None:
        self._loop.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._loop.stop(timeout)
        try:
            self.flush()
            self.stats.retire()
        except errors.NimbusError as exc:
            # What was not folded is folded by a surviving worker later.
            log.warning("could not write the last invocation records: %s", exc.message)

    def _flush_step(self) -> float:
        self.flush()
        return self.interval_sec

    # -- flushing -----------------------------------------------------------------

    def flush(self) -> None:
        """Write everything recorded so far (called by the flusher and by readers)."""
        with self._flush_lock:
            outcomes = []
            while self._pending:
                outcomes.append(self._pending.popleft())
            batches: dict[str, _Batch] = {}
            # Gauges and cache counters first: a scrape that sees these calls counted then
            # also sees the artifact loads they made (a load is counted before its outcome).
            self.refresh_gauges()
            self.metrics.observe_invocations(outcomes)
            self.stats.add_all(outcomes)
            if self.windows is not None:
                self.windows.add_all(outcomes)
            for o in outcomes:
                if o.status == THROTTLED:
                    continue  # nothing ran, nothing to log (and no store writes when overloaded)
                entries, newest_us = entries_for(o, self.max_log_bytes)
                batch = batches.setdefault(o.function_id, _Batch(o.function_id))
                batch.entries.extend(entries)
                batch.newest_us = max(batch.newest_us, newest_us)
            todo, self._retry = [*self._retry, *batches.values()], []
            written = 0
            for batch in todo:
                self._seq += 1
                write = partial(self.logs.write, batch.function_id, batch.entries,
                                batch.newest_us, self.writer, self._seq)  # fmt: skip
                if not self._saved(self._log_failures, write):
                    self._retry.append(batch)
                    continue
                written += 1
                self.metrics.log_batches.inc()
                self.metrics.log_entries.inc(len(batch.entries))
            self._trim_retry()
            self._saved(self._stats_failures, self.stats.save)  # else kept; written next time
            if self.windows is not None:
                self._saved(self._window_failures, self.windows.save)
            if outcomes:
                self.flushes += 1
                self.outcomes_flushed += len(outcomes)
                self.batches_written += written

    @staticmethod
    def _saved(failures: StepFailures, write: Callable[[], object]) -> bool:
        """One store write of the flush; what it could not write stays for the next. A store
        that does not answer is said once, and once more when it answers again (a line per
        flush, twice a second, before)."""
        try:
            write()
        except errors.Unavailable as exc:
            failures.failed(exc)
            return False
        except errors.NimbusError as exc:
            log.warning("%s: %s", failures.what, exc.message)
            return False
        failures.succeeded()
        return True

    def _trim_retry(self) -> None:
        waiting = sum(len(b.entries) for b in self._retry)
        while self._retry and waiting > self.retry_max_entries:
            dropped = self._retry.pop(0)
            waiting -= len(dropped.entries)
            self.metrics.log_entries_dropped.inc(len(dropped.entries))

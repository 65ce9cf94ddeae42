"""Windowed invocation stats per function × version: written by each worker, merged on read.

Records (store/records.py, over `Window`; their objects' layout is store/windows.py):

    RawWindows    one worker's 10 s slots of one minute of one function, per version
                  (only that worker writes it)
    HourWindows   an hour of one function rolled up to 1 min slots, per version
                  (window_rollup.py)
    RolledHour    the hour's roll-up is complete (and whether its raw objects are gone)

A window is counts by outcome plus a mergeable latency histogram
(`histogram.py`), so windows from any number of workers and replicas add up
exactly, and p50/p95/p99 of the sum are within one bucket (10 %).

The outcome flusher calls `WindowBook.add_all` and `save` (off the request
path): one PUT per function with outcomes per flush, the worker's running
totals of that minute. A slot is the outcome's end time (start + duration),
so an outcome lands in the slot it finished in. Readers see a worker's
outcomes at most one flush interval (LOG_FLUSH_SEC, 0.5 s) after they end.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from store import Store, errors, records
from store.windows import StatsWindows

from . import histogram
from .counts import OutcomeCounts
from .recorder import InvocationOutcome

SLOT_SEC = 10
MINUTE = 60
HOUR = 3600


def floor_to(t: float, step: int) -> int:
    return int(t // step) * step


@dataclass(slots=True)
class Window(OutcomeCounts):
    """What a set of invocations did; windows merge by addition."""

    invocations: int = 0  # ran (throttled calls never did)
    error_codes: dict[str, int] = field(default_factory=dict)
    latency: dict[int, int] = field(default_factory=dict)  # histogram bucket → count

    @property
    def errors(self) -> int:
        """What counts against a version: function errors, timeouts, memory kills."""
        return self.failed + self.timed_out

    def add(self, o: InvocationOutcome) -> None:
        if not self.count(o):
            return
        self.invocations += 1
        if o.error_code:
            self.error_codes[o.error_code] = self.error_codes.get(o.error_code, 0) + 1
        histogram.add(self.latency, o.duration_ms)

    def merge(self, other: Window) -> None:
        self.invocations += other.invocations
        self.merge_counts(other)
        for code, n in other.error_codes.items():
            self.error_codes[code] = self.error_codes.get(code, 0) + n
        histogram.merge(self.latency, other.latency)


# slot start (Unix s) → version → window
Slots = dict[int, dict[int, Window]]


# The records (store/records.py) over this module's windows.
RawWindows = records.RawWindows[Window]
HourWindows = records.HourWindows[Window]
RolledHour = records.RolledHour


def merge_slots(into: Slots, other: Slots, *, step: int | None = None) -> None:
    """Add `other` to `into`, re-slotted to `step` seconds if given."""
    for start, versions in other.items():
        slot = into.setdefault(floor_to(start, step) if step else start, {})
        for version, window in versions.items():
            slot.setdefault(version, Window()).merge(window)


class WindowBook:
    """This worker's windows of the minutes it is still writing.

    NOTE: a minute's object holds the worker's running totals of that minute,
    written again at every flush that added to it; a minute is forgotten once
    it has been written and no outcome has landed in it for two minutes.
    """

    def __init__(self, store: Store, writer: str) -> None:
        self.windows = StatsWindows(store)
        self.writer = writer
        self._lock = threading.Lock()
        self._minutes: dict[tuple[str, int], Slots] = {}
        self._dirty: set[tuple[str, int]] = set()

    def add_all(self, outcomes: list[InvocationOutcome]) -> None:
        with self._lock:
            for o in outcomes:
                ended = o.started_at.timestamp() + o.duration_ms / 1000
                slot = floor_to(ended, SLOT_SEC)
                minute = floor_to(slot, MINUTE)
                key = (o.function_id, minute)
                versions = self._minutes.setdefault(key, {}).setdefault(slot, {})
                versions.setdefault(o.version, Window()).add(o)
                self._dirty.add(key)

    def save(self) -> int:
        """Write every minute that changed since the last save; how many objects were written.

        A minute the store refused stays dirty and is written at the next save.
        """
        with self._lock:
            todo = [(key, RawWindows(writer=self.writer, function_id=key[0], minute=key[1],
                                     slots=self._minutes[key])) for key in self._dirty]  # fmt: skip
            # serialized under the lock: add_all must not change a slot mid-dump
            payloads = [(key, record.model_dump_json().encode()) for key, record in todo]
            self._dirty.clear()
        written = 0
        failed: list[tuple[str, int]] = []
        for (function_id, minute), data in payloads:
            try:
                self.windows.put_raw(floor_to(minute, HOUR), function_id, minute, self.writer, data)
                written += 1
            except errors.NimbusError:
                failed.append((function_id, minute))
        with self._lock:
            self._dirty.update(failed)
            horizon = time.time() - 2 * MINUTE
            for key in [k for k in self._minutes if k[1] + MINUTE < horizon]:
                if key not in self._dirty:
                    del self._minutes[key]
        if failed:
            raise errors.Unavailable(f"{len(failed)} stats window objects not written")
        return written

"""Reading windowed stats: a time range at a step, from raw 10 s windows or hour roll-ups.

An hour whose roll-up is complete (`rolled/<hour>`) is read from its hour
objects (1 min slots, one object per function) whenever the step is a whole
number of minutes; otherwise, and for hours not rolled up yet, from the raw
objects of every worker (10 s slots). Raw objects are kept for
STATS_RAW_RETENTION_HOURS, so 10 s steps reach back that far and whole-minute
steps back to STATS_RETENTION_DAYS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from store import Store, errors
from store.windows import StatsWindows

from .windows import (
    HOUR,
    MINUTE,
    SLOT_SEC,
    HourWindows,
    RawWindows,
    RolledHour,
    Slots,
    Window,
    floor_to,
)

MAX_POINTS = 1440


@dataclass
class Point:
    start: int
    total: Window = field(default_factory=Window)
    by_version: dict[int, Window] = field(default_factory=dict)


@dataclass
class WindowSeries:
    since: int  # aligned down to the step
    until: int
    step: int
    resolution: int  # the finest slot read: 10 or 60 s
    points: list[Point]
    total: Window = field(default_factory=Window)
    by_version: dict[int, Window] = field(default_factory=dict)
    by_function: dict[str, Window] = field(default_factory=dict)


def check_range(since: float, until: float, step: int, max_span_sec: float | None = None) -> None:
    if step < SLOT_SEC or step % SLOT_SEC:
        raise errors.Invalid.field("step", f"must be a positive multiple of {SLOT_SEC} seconds")
    if since >= until:
        raise errors.Invalid.field("since", "must be before until")
    # NOTE: every hour of the range is read (a marker, then its objects): since=0 read
    # ~490,000 hours for one request. Past the retention there is nothing to read.
    if max_span_sec is not None and until - since > max_span_sec:
        days = max_span_sec / 86400
        raise errors.Invalid.field(
            "since", f"the range is longer than the {days:g} days stats are kept"
        )
    if (until - floor_to(since, step)) / step > MAX_POINTS:
        raise errors.Invalid.field(
            "step", f"the range holds more than {MAX_POINTS} steps; use a larger step"
        )


class WindowQuery:
    def __init__(
        self,
        store: Store,
        flush: Callable[[], None] | None = None,
        *,
        max_span_sec: float | None = None,
    ) -> None:
        self.windows = StatsWindows(store)
        self.flush = flush  # this worker's pending outcomes first
        self.max_span_sec = max_span_sec  # the longest range `series` reads (None: any)

    def series(
        self,
        since: float,
        until: float,
        step: int,
        *,
        function_id: str | None = None,
        version: int | None = None,
    ) -> WindowSeries:
        """Windows of one function (or all) over [since, until), summed per step."""
        check_range(since, until, step, self.max_span_sec)
        return self._collect(floor_to(since, step), math.ceil(until), step, function_id, version)

    def totals(
        self, function_id: str | None, since: float, until: float, version: int | None = None
    ) -> Window:
        """All of [since, until) in one window (e.g. a canary step's outcomes, an alert
        rule's window), from the 10 s slot holding `since`; `function_id` None: all."""
        start, end = floor_to(since, SLOT_SEC), math.ceil(until)
        step = max(SLOT_SEC, math.ceil((end - start) / SLOT_SEC) * SLOT_SEC)
        return self._collect(start, end, step, function_id, version).total

    def _collect(
        self, start: int, until: int, step: int, function_id: str | None, version: int | None
    ) -> WindowSeries:
        if self.flush is not None:
            self.flush()
        points = [Point(t) for t in range(start, until, step)]
        out = WindowSeries(start, until, step, MINUTE if step % MINUTE == 0 else SLOT_SEC, points)
        for hour in range(floor_to(start, HOUR), until, HOUR):
            for fn, slots, resolution in self._hour(hour, function_id, step):
                out.resolution = min(out.resolution, resolution)
                self._add(out, fn, slots, version)
        return out

    def _hour(
        self, hour: int, function_id: str | None, step: int
    ) -> Iterable[tuple[str, Slots, int]]:
        if step % MINUTE == 0 and self._rolled(hour):
            for data in self.windows.hour(hour, function_id):
                record = HourWindows.model_validate_json(data)
                yield record.function_id, record.slots, MINUTE
            return
        for data in self.windows.raw(hour, function_id):
            raw = RawWindows.model_validate_json(data)
            yield raw.function_id, raw.slots, SLOT_SEC

    def _rolled(self, hour: int) -> bool:
        data = self.windows.marker(hour)
        return data is not None and RolledHour.model_validate_json(data) is not None

    @staticmethod
    def _add(out: WindowSeries, function_id: str, slots: Slots, version: int | None) -> None:
        for start, versions in slots.items():
            if not out.since <= start < out.until:
                continue
            point = out.points[(start - out.since) // out.step]
            for number, window in versions.items():
                if version is not None and number != version:
                    continue
                point.total.merge(window)
                point.by_version.setdefault(number, Window()).merge(window)
                out.total.merge(window)
                out.by_version.setdefault(number, Window()).merge(window)
                out.by_function.setdefault(function_id, Window()).merge(window)

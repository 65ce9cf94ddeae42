"""Rolling raw 10 s windows up into hours, and retention: the store's stats stay bounded.

An hour is rolled up once it ended `grace_sec` ago (no worker writes a
minute that old: a worker writes a minute's object within one flush of its
outcomes): every worker's raw objects of each function are summed into one
hour object with 1 min slots, then the hour's roll-up marker is written.
Rolling up is idempotent (the same raw objects give the same hour objects),
so a roll-up cut short is simply done again; readers only use hour objects
once the marker exists. Raw objects are deleted `raw_retention_sec`
after their hour, hour objects and markers `retention_sec` after it.

One worker at a time does either (a store hold each, `store.leases`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from store import Store
from store.leases import WINDOW_ROLLUP, WINDOW_SWEEP
from store.windows import StatsWindows

from .windows import (
    HOUR,
    MINUTE,
    HourWindows,
    RawWindows,
    RolledHour,
    Slots,
    floor_to,
    merge_slots,
)

# (job name, seconds) → True when this worker may do the job now (Leases.hold_job).
Hold = Callable[[str, float], bool]


class WindowRollup:
    def __init__(
        self,
        store: Store,
        hold: Hold,
        *,
        grace_sec: float = 300,
        raw_retention_sec: float = 3 * HOUR,
        retention_sec: float = 30 * 86400,
        roll_every_sec: float = 60,
        sweep_every_sec: float = HOUR,
    ) -> None:
        self.windows = StatsWindows(store)
        self.hold = hold
        self.grace_sec = grace_sec
        self.raw_retention_sec = max(raw_retention_sec, grace_sec + HOUR)
        self.retention_sec = retention_sec
        self.roll_every_sec = roll_every_sec
        self.sweep_every_sec = sweep_every_sec

    def upkeep(self) -> tuple[int, int]:
        """Roll up and sweep if it is this worker's turn: (hours rolled, objects deleted)."""
        rolled = self.roll() if self.hold(WINDOW_ROLLUP, self.roll_every_sec) else 0
        deleted = self.sweep() if self.hold(WINDOW_SWEEP, self.sweep_every_sec) else 0
        return rolled, deleted

    def due_hours(self, now: float) -> range:
        """Hours that ended at least `grace_sec` ago and still have their raw objects."""
        last = floor_to(now - self.grace_sec, HOUR) - HOUR
        first = floor_to(now - self.raw_retention_sec, HOUR)
        return range(first, last + 1, HOUR)

    def roll(self, now: float | None = None, hours: list[int] | None = None) -> int:
        now = time.time() if now is None else now
        done = 0
        for hour in self.due_hours(now) if hours is None else hours:
            if not self.windows.is_rolled(hour):
                self.roll_hour(hour)
                done += 1
        return done

    def roll_hour(self, hour: int) -> None:
        by_function: dict[str, Slots] = {}
        for data in self.windows.raw(hour):
            raw = RawWindows.model_validate_json(data)
            merge_slots(by_function.setdefault(raw.function_id, {}), raw.slots, step=MINUTE)
        for function_id, slots in by_function.items():
            record = HourWindows(function_id=function_id, hour=hour, slots=slots)
            self.windows.put_hour(hour, function_id, record.model_dump_json().encode())
        marker = RolledHour(hour=hour, functions=len(by_function))
        self.windows.put_marker(hour, marker.model_dump_json().encode())

    def sweep(self, now: float | None = None) -> int:
        """Delete what retention no longer keeps; roll up stray raw hours first."""
        now = time.time() if now is None else now
        stray = self.windows.raw_hours()
        ended = [h for h in sorted(stray) if h + HOUR + self.grace_sec <= now]
        self.roll(now, hours=ended)
        deleted = 0
        for hour in self.windows.marked_hours():
            age = now - (hour + HOUR)
            data = self.windows.marker(hour)
            if data is None:
                continue
            marker = RolledHour.model_validate_json(data)
            if age > self.retention_sec:
                deleted += self.windows.delete_raw(hour) + self.windows.delete_hour(hour)
            elif age > self.raw_retention_sec and (not marker.raw_deleted or hour in stray):
                deleted += self.windows.delete_raw(hour)
                marker.raw_deleted = True
                self.windows.put_marker(hour, marker.model_dump_json().encode())
        return deleted

"""Rolling raw 10 s windows up into hours, and retention: the store's stats stay bounded.

An hour is rolled up once it ended `grace_sec` ago (no worker writes a
minute that old: a worker writes a minute's object within one flush of its
outcomes): every worker's raw objects of each function are summed into one
`hour/<hour>/<fn>.json` with 1 min slots, then the `rolled/<hour>` marker is
written. Rolling up is idempotent (the same raw objects give the same hour
objects), so a roll-up cut short is simply done again; readers only use hour
objects once the marker exists. Raw objects are deleted `raw_retention_sec`
after their hour, hour objects and markers `retention_sec` after it.

One worker at a time does either (a store hold each, `store.leases`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from store import Store, errors
from store.leases import WINDOW_ROLLUP, WINDOW_SWEEP

from .windows import (
    HOUR,
    MINUTE,
    RAW_PREFIX,
    ROLLED_PREFIX,
    HourWindows,
    RawWindows,
    RolledHour,
    Slots,
    floor_to,
    hour_key,
    hour_prefix,
    merge_slots,
    raw_prefix,
    rolled_key,
)

# (job name, seconds) → True when this worker may do the job now (Leases.hold_job).
Hold = Callable[[str, float], bool]


def _hour_of(key: str, prefix: str) -> int | None:
    head = key[len(prefix) :].split("/", 1)[0].removesuffix(".json")
    return int(head) if head.isdigit() else None


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
        self.store = store
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
            if not self.store.exists(rolled_key(hour)):
                self.roll_hour(hour)
                done += 1
        return done

    def roll_hour(self, hour: int) -> None:
        by_function: dict[str, Slots] = {}
        for key in list(self.store.list(raw_prefix(hour))):
            with contextlib.suppress(errors.NotFound):
                raw = RawWindows.model_validate_json(self.store.get(key).data)
                merge_slots(by_function.setdefault(raw.function_id, {}), raw.slots, step=MINUTE)
        for function_id, slots in by_function.items():
            record = HourWindows(function_id=function_id, hour=hour, slots=slots)
            self.store.put(hour_key(hour, function_id), record.model_dump_json().encode())
        marker = RolledHour(hour=hour, functions=len(by_function))
        self.store.put(rolled_key(hour), marker.model_dump_json().encode())

    def sweep(self, now: float | None = None) -> int:
        """Delete what retention no longer keeps; roll up stray raw hours first."""
        now = time.time() if now is None else now
        stray = {h for k in self.store.list(RAW_PREFIX) if (h := _hour_of(k, RAW_PREFIX))}
        ended = [h for h in sorted(stray) if h + HOUR + self.grace_sec <= now]
        self.roll(now, hours=ended)
        deleted = 0
        for key in list(self.store.list(ROLLED_PREFIX)):
            hour = _hour_of(key, ROLLED_PREFIX)
            if hour is None:
                continue
            age = now - (hour + HOUR)
            try:
                blob = self.store.get(key)
            except errors.NotFound:
                continue
            marker = RolledHour.model_validate_json(blob.data)
            if age > self.retention_sec:
                deleted += self._delete_prefix(raw_prefix(hour)) + self._delete_prefix(
                    hour_prefix(hour)
                )
                self.store.delete(key)
                deleted += 1
            elif age > self.raw_retention_sec and (not marker.raw_deleted or hour in stray):
                deleted += self._delete_prefix(raw_prefix(hour))
                marker.raw_deleted = True
                self.store.put(key, marker.model_dump_json().encode())
        return deleted

    def _delete_prefix(self, prefix: str) -> int:
        keys = list(self.store.list(prefix))
        for key in keys:
            self.store.delete(key)
        return len(keys)

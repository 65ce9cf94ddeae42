"""Schedule records and the last tick each one fired.

    schedules/by-function/<fn_ or wf_ id>/<sid>.json Schedule (a function's or a workflow's)
    schedules/runs/<sid>.json                        ScheduleRun: the last tick fired
    schedules/changed                                bumped on every change

A tick itself leaves no object of its own: its async invocation's id derives
from (schedule id, scheduled time) and the invocation record is written
create-only, so that write is the claim (gateway/jobs/schedules.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import errors
from ._base import Store
from .functions import SCHEDULES_CHANGED_KEY, FunctionRepo, schedule_prefix
from .leases import probe_conditional_writes
from .records import Schedule, ScheduleRun

_SCHEDULE_ID = re.compile(r"^sch_[a-z2-7]{16}\Z")


def schedule_key(function_id: str, schedule_id: str) -> str:
    return f"{schedule_prefix(function_id)}{schedule_id}.json"


def run_key(schedule_id: str) -> str:
    return f"schedules/runs/{schedule_id}.json"


class ScheduleRepo:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._records = FunctionRepo(store)  # its generic JSON read/write/compare-and-swap

    def conditional_writes_enforced(self) -> bool:
        """Whether the store refuses a lost compare-and-swap (`probe_conditional_writes`):
        exactly-once ticks depend on it."""
        return probe_conditional_writes(self.store)

    def _key(self, function_id: str, schedule_id: str) -> str:
        if not _SCHEDULE_ID.match(schedule_id):
            raise self._not_found(schedule_id)
        return schedule_key(function_id, schedule_id)

    @staticmethod
    def _not_found(schedule_id: str) -> errors.NotFound:
        return errors.NotFound(f"schedule {schedule_id!r} not found")

    def create(self, schedule: Schedule) -> None:
        self._records.write(schedule_key(schedule.owner_id, schedule.id), schedule, create=True)
        self.changed()

    def get(self, function_id: str, schedule_id: str) -> Schedule:
        try:
            return self._records.read(self._key(function_id, schedule_id), Schedule)[0]
        except errors.NotFound:
            raise self._not_found(schedule_id) from None

    def update(
        self, function_id: str, schedule_id: str, mutate: Callable[[Schedule], Schedule]
    ) -> Schedule:
        try:
            schedule = self._records.update(self._key(function_id, schedule_id), Schedule, mutate)
        except errors.NotFound:
            raise self._not_found(schedule_id) from None
        self.changed()
        return schedule

    def delete(self, function_id: str, schedule_id: str) -> None:
        key = self._key(function_id, schedule_id)
        if not self.store.exists(key):
            raise self._not_found(schedule_id)
        self.store.delete(key)
        self.store.delete(run_key(schedule_id))
        self.changed()

    def list_for(self, function_id: str) -> list[Schedule]:
        return self._read_all(schedule_prefix(function_id))

    def list_all(self) -> list[Schedule]:
        """Every schedule the ticker can run: one that does not read back is left out
        (logged as it is read), not a failed load that stops every schedule's ticks."""
        return self._read_all("schedules/by-function/", skip_unreadable=True)

    def count_for(self, function_id: str) -> int:
        return sum(1 for _ in self.store.list(schedule_prefix(function_id)))

    def _read_all(self, prefix: str, *, skip_unreadable: bool = False) -> list[Schedule]:
        out = []
        for key in self.store.list(prefix):
            try:
                out.append(self._records.read(key, Schedule)[0])
            except errors.NotFound:
                continue  # deleted while we listed
            except errors.RecordUnreadable:
                if not skip_unreadable:
                    raise
        return out

    # -- change notes and runs ----------------------------------------------------

    def changed(self) -> None:
        self._records.note_schedules_changed()

    def change_tag(self) -> str | None:
        """The change note's etag: equal tags mean no schedule changed in between."""
        return self.store.head(SCHEDULES_CHANGED_KEY)

    def record_run(self, run: ScheduleRun, schedule_id: str) -> None:
        self._records.write(run_key(schedule_id), run)

    def last_run(self, schedule_id: str) -> ScheduleRun | None:
        try:
            return self._records.read(run_key(schedule_id), ScheduleRun)[0]
        except errors.NotFound:
            return None

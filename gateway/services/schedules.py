"""Schedules of a function: create, list, read, update, delete, and their views.

The ticks themselves are fired by `gateway/jobs/schedules.py`; this is what
the API's `/functions/{ref}/schedules` routes mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import orjson

from store import errors
from store.functions import FunctionRepo
from store.records import MAX_JSON_DEPTH, Function, Schedule, nests_deeper_than, new_id, now
from store.schedules import ScheduleRepo
from store.workflows import WorkflowRepo

from ..limits import ASYNC_EVENT_LIMIT as EVENT_LIMIT  # a tick is an async invocation
from ..schemas import ScheduleCreate, ScheduleList, ScheduleUpdate, ScheduleView
from . import cron
from .targets import parse_target

SCHEDULE_ID_PREFIX = "sch_"


OwnerKind = Literal["function", "workflow"]


@dataclass(frozen=True)
class _Owner:
    id: str
    name: str  # "function hello", "workflow order"
    fn: Function | None  # None for a workflow


def ticks_of(schedule: Schedule) -> cron.Ticks:
    return cron.parse(schedule.expression, schedule.timezone, anchor=schedule.anchor)


class ScheduleService:
    def __init__(
        self,
        repo: ScheduleRepo,
        functions: FunctionRepo,
        *,
        max_per_function: int,
        resolve_alias: Callable[[Function, str], int] | None = None,
        workflows: WorkflowRepo | None = None,
    ):
        self.repo = repo
        self.functions = functions
        self.workflows = workflows
        self.max_per_function = max_per_function
        self.resolve_alias = resolve_alias  # alias → version number; NotFound if none

    # -- views ---------------------------------------------------------------------

    def view(self, schedule: Schedule) -> ScheduleView:
        ticks = ticks_of(schedule)
        run = self.repo.last_run(schedule.id)
        return ScheduleView(
            id=schedule.id,
            function_id=schedule.function_id or None,
            workflow_id=schedule.workflow_id,
            expression=schedule.expression,
            summary=ticks.describe(),
            timezone=schedule.timezone,
            qualifier=schedule.qualifier,
            event=orjson.loads(schedule.event),
            enabled=schedule.enabled,
            description=schedule.description,
            next_run_at=ticks.next_after(now()) if schedule.enabled else None,
            last_run_at=run.scheduled_at if run else None,
            last_invocation_id=run.invocation_id if run else None,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
        )

    # -- reads ---------------------------------------------------------------------

    def _owner(self, ref: str, kind: OwnerKind) -> _Owner:
        if kind == "workflow":
            if self.workflows is None:
                raise errors.NotFound(f"workflow {ref!r} not found")
            workflow = self.workflows.resolve(ref)
            return _Owner(workflow.id, f"workflow {workflow.name}", None)
        fn, _ = self.functions.resolve(ref)
        return _Owner(fn.id, f"function {fn.name}", fn)

    def list(self, ref: str, kind: OwnerKind = "function") -> ScheduleList:
        owner = self._owner(ref, kind)
        views = [self.view(s) for s in self.repo.list_for(owner.id)]
        views.sort(key=lambda v: v.created_at)
        return ScheduleList(schedules=views, total=len(views))

    def get(self, ref: str, schedule_id: str, kind: OwnerKind = "function") -> ScheduleView:
        return self.view(self.repo.get(self._owner(ref, kind).id, schedule_id))

    # -- writes --------------------------------------------------------------------

    def create(self, ref: str, body: ScheduleCreate, kind: OwnerKind = "function") -> ScheduleView:
        owner = self._owner(ref, kind)
        if self.repo.count_for(owner.id) >= self.max_per_function:
            raise errors.Conflict(
                f"{owner.name} has {self.max_per_function} schedules, the most it may have",
                code="quota_exceeded",
            )
        schedule = Schedule(
            id=new_id(SCHEDULE_ID_PREFIX),
            function_id=owner.id if owner.fn is not None else "",
            workflow_id=None if owner.fn is not None else owner.id,
            expression=body.expression.strip(),
            timezone=body.timezone or "UTC",
            event=_event_text(body.event),
            qualifier=self._checked_qualifier(owner, body.qualifier),
            enabled=True if body.enabled is None else body.enabled,
            description=body.description or "",
        )
        ticks_of(schedule)  # 422 for a bad expression or time zone
        self.repo.create(schedule)
        if not self._still_kept(owner, schedule.qualifier):
            self.repo.delete(owner.id, schedule.id)
            raise self._pruned_meanwhile(owner, schedule.qualifier)
        return self.view(schedule)

    def update(
        self, ref: str, schedule_id: str, body: ScheduleUpdate, kind: OwnerKind = "function"
    ) -> ScheduleView:
        owner = self._owner(ref, kind)
        fields = body.model_dump(exclude_unset=True)
        qualifier = (
            self._checked_qualifier(owner, body.qualifier) if "qualifier" in fields else None
        )

        def apply(schedule: Schedule) -> Schedule:
            if body.expression is not None and body.expression.strip() != schedule.expression:
                schedule.expression = body.expression.strip()
                schedule.anchor = now()  # a new rate() counts from its change
            if body.timezone is not None:
                schedule.timezone = body.timezone
            if "event" in fields:
                schedule.event = _event_text(body.event)
            if "qualifier" in fields:
                previous.setdefault("qualifier", schedule.qualifier)
                schedule.qualifier = qualifier
            if body.enabled is not None:
                schedule.enabled = body.enabled
            if body.description is not None:
                schedule.description = body.description
            ticks_of(schedule)
            schedule.updated_at = now()
            return schedule

        previous: dict[str, str | None] = {}
        updated = self.repo.update(owner.id, schedule_id, apply)
        if "qualifier" in fields and not self._still_kept(owner, qualifier):

            def undo(schedule: Schedule) -> Schedule | None:
                if schedule.qualifier != qualifier:
                    return None  # changed again since
                schedule.qualifier = previous["qualifier"]
                return schedule

            self.repo.update(owner.id, schedule_id, undo)
            raise self._pruned_meanwhile(owner, qualifier)
        return self.view(updated)

    def delete(self, ref: str, schedule_id: str, kind: OwnerKind = "function") -> None:
        self.repo.delete(self._owner(ref, kind).id, schedule_id)

    def _checked_qualifier(self, owner: _Owner, qualifier: str | None) -> str | None:
        """A version number that exists or an alias the function has, or None."""
        if qualifier is None or qualifier == "":
            return None
        fn = owner.fn
        if fn is None:
            raise errors.Invalid.field("qualifier", "a workflow's ticks start its latest version")
        target = parse_target(f"{fn.id}:{qualifier}", field="qualifier")
        if target.version is not None:
            if target.version > fn.latest_version:
                message = f"{fn.name} has no version {target.version} (latest: {fn.latest_version})"
                raise errors.Invalid.field("qualifier", message)
            if not self.functions.version_kept(fn.id, target.version):  # pruned
                raise errors.Invalid.field(
                    "qualifier", f"function {fn.name} has no version {target.version}"
                )
            return str(target.version)
        try:
            if self.resolve_alias is None:
                raise errors.NotFound("no aliases")
            self.resolve_alias(fn, target.alias)
        except errors.NotFound:
            raise errors.Invalid.field(
                "qualifier", f"{fn.name} has no alias named {qualifier!r}"
            ) from None
        return target.alias

    def _still_kept(self, owner: _Owner, qualifier: str | None) -> bool:
        """After the write: a version a prune claimed or deleted meanwhile is not pinned
        (the prune reads schedules again after its claim; see VersionService.prune)."""
        if owner.fn is None or not qualifier or not qualifier.isdigit():
            return True
        return self.functions.version_kept(owner.id, int(qualifier))

    @staticmethod
    def _pruned_meanwhile(owner: _Owner, qualifier: str | None) -> errors.Invalid:
        name = owner.fn.name if owner.fn is not None else owner.name
        return errors.Invalid.field(
            "qualifier", f"function {name} has no version {qualifier} (pruned meanwhile)"
        )


def _event_text(event: object) -> str:
    if nests_deeper_than(event):  # NOTE: orjson writes 254 levels at most (reads 1,024)
        raise errors.Invalid.field("event", f"nests deeper than {MAX_JSON_DEPTH} levels")
    text = orjson.dumps({} if event is None else event).decode()
    if len(text) > EVENT_LIMIT:
        message = f"a schedule's event may be {EVENT_LIMIT} bytes; this one is {len(text)}"
        raise errors.Invalid.field("event", message)
    return text

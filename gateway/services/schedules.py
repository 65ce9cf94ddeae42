"""Schedules of a function: create, list, read, update, delete, and their views.

The ticks themselves are fired by `gateway/jobs/schedules.py`; this is what
the API's `/functions/{ref}/schedules` routes mean, and `/schedules` (every
function's and workflow's, one page at a time).
"""

from __future__ import annotations

import time
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
from ..schemas import ScheduleCreate, ScheduleList, SchedulePage, ScheduleUpdate, ScheduleView
from . import cron
from .targets import parse_target
from .versions import check_page

SCHEDULE_ID_PREFIX = "sch_"


OwnerKind = Literal["function", "workflow"]


@dataclass(frozen=True)
class _Owner:
    id: str
    kind: OwnerKind
    name: str  # the function's or the workflow's
    fn: Function | None  # None for a workflow

    @property
    def label(self) -> str:  # "function hello", "workflow order"
        return f"{self.kind} {self.name}"


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
        reload_sec: float = 60.0,
    ):
        self.repo = repo
        self.functions = functions
        self.workflows = workflows
        self.max_per_function = max_per_function
        self.resolve_alias = resolve_alias  # alias → version number; NotFound if none
        self.reload_sec = reload_sec  # the list's schedules are read again at least this often
        self._loaded: tuple[str, float, list[Schedule]] | None = None  # (change tag, when, all)

    # -- views ---------------------------------------------------------------------

    def view(self, schedule: Schedule, owner: _Owner) -> ScheduleView:
        ticks = ticks_of(schedule)
        run = self.repo.last_run(schedule.id)
        return ScheduleView(
            id=schedule.id,
            function_id=schedule.function_id or None,
            workflow_id=schedule.workflow_id,
            function_name=owner.name if owner.kind == "function" else None,
            workflow_name=owner.name if owner.kind == "workflow" else None,
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
            return _Owner(workflow.id, "workflow", workflow.name, None)
        fn, _ = self.functions.resolve(ref)
        return _Owner(fn.id, "function", fn.name, fn)

    def _owner_of(self, schedule: Schedule) -> _Owner | None:
        """The function or workflow a stored schedule belongs to; None once it is deleted
        (its schedules go with it)."""
        try:
            if schedule.function_id:
                return self._owner(schedule.function_id, "function")
            return self._owner(schedule.workflow_id or "", "workflow")
        except errors.NotFound:
            return None

    def _all(self) -> list[Schedule]:
        """Every stored schedule, read again only when the change note moved (one HEAD)
        or every `reload_sec` regardless, as the ticker does: a console polling the list
        costs no read per schedule."""
        tag, at = self.repo.change_tag(), time.monotonic()
        loaded = self._loaded
        if loaded is not None and loaded[0] == tag and at - loaded[1] < self.reload_sec:
            return loaded[2]
        schedules = self.repo.list_all()
        self._loaded = None if tag is None else (tag, at, schedules)
        return schedules

    def list(self, ref: str, kind: OwnerKind = "function") -> ScheduleList:
        owner = self._owner(ref, kind)
        views = [self.view(s, owner) for s in self.repo.list_for(owner.id)]
        views.sort(key=lambda v: v.created_at)
        return ScheduleList(schedules=views, total=len(views))

    def list_all(
        self,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SchedulePage:
        """Every function's and workflow's schedules, oldest first. `name`: a part of the
        function's or workflow's name; `enabled`: only the schedules that are (or are not)."""
        check_page(limit, offset)
        owners: dict[str, _Owner | None] = {}
        matches: list[tuple[Schedule, _Owner]] = []
        for schedule in self._all():
            owner_id = schedule.owner_id
            if owner_id not in owners:
                owners[owner_id] = self._owner_of(schedule)  # one read per function or workflow
            owner = owners[owner_id]
            if (
                owner is not None
                and (name is None or name in owner.name)
                and (enabled is None or schedule.enabled == enabled)
            ):
                matches.append((schedule, owner))
        matches.sort(key=lambda m: (m[0].created_at, m[0].id))
        return SchedulePage(
            schedules=[self.view(s, owner) for s, owner in matches[offset : offset + limit]],
            total=len(matches),
            limit=limit,
            offset=offset,
        )

    def get(self, ref: str, schedule_id: str, kind: OwnerKind = "function") -> ScheduleView:
        owner = self._owner(ref, kind)
        return self.view(self.repo.get(owner.id, schedule_id), owner)

    # -- writes --------------------------------------------------------------------

    def create(self, ref: str, body: ScheduleCreate, kind: OwnerKind = "function") -> ScheduleView:
        owner = self._owner(ref, kind)
        if self.repo.count_for(owner.id) >= self.max_per_function:
            raise errors.Conflict(
                f"{owner.label} has {self.max_per_function} schedules, the most it may have",
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
        return self.view(schedule, owner)

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
        return self.view(updated, owner)

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
        return errors.Invalid.field(
            "qualifier", f"function {owner.name} has no version {qualifier} (pruned meanwhile)"
        )


def _event_text(event: object) -> str:
    if nests_deeper_than(event):  # NOTE: orjson writes 254 levels at most (reads 1,024)
        raise errors.Invalid.field("event", f"nests deeper than {MAX_JSON_DEPTH} levels")
    text = orjson.dumps({} if event is None else event).decode()
    if len(text) > EVENT_LIMIT:
        message = f"a schedule's event may be {EVENT_LIMIT} bytes; this one is {len(text)}"
        raise errors.Invalid.field("event", message)
    return text

"""Workflows and executions as the API sees them: the store side of the ASL core.

Create and edit check a definition fully (states, paths, operators, that each
Task's function exists) before anything is written; an edit makes a new
immutable version, and an execution keeps the version it started on.
Starting an execution writes it durably (marker, index, record) before the
202; a runner (gateway/jobs/workflows.py) takes it from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from store import errors
from store.functions import FunctionRepo
from store.records import (
    MAX_JSON_DEPTH,
    Branch,
    Execution,
    ExecutionStatus,
    HistoryEvent,
    Workflow,
    WorkflowVersion,
    nests_deeper_than,
    new_id,
    now,
)
from store.workflows import WorkflowRepo

from ...limits import WORKFLOW_PAYLOAD_LIMIT as INPUT_LIMIT  # an execution's input
from ...schemas import (
    ExecutionList,
    ExecutionView,
    HistoryEventView,
    HistoryView,
    WorkflowCreate,
    WorkflowList,
    WorkflowRef,
    WorkflowUpdate,
    WorkflowView,
)
from .._bounded import BoundedCache
from ..targets import parse_target
from .definition import Machine, compile_definition, parse_definition, task_resources

MACHINES_CACHED = 512  # compiled definitions kept per worker


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 100:
        raise errors.Invalid.field("limit", "must be between 1 and 100")
    if offset < 0:
        raise errors.Invalid.field("offset", "must not be negative")


def execution_view(execution: Execution) -> ExecutionView:
    return ExecutionView(
        id=execution.id,
        workflow=WorkflowRef(id=execution.workflow_id, name=execution.workflow_name),
        workflow_version=execution.workflow_version,
        status=execution.status,
        input=execution.input,
        output=execution.output,
        error=execution.error,
        cause=execution.cause,
        started_at=execution.started_at,
        stopped_at=execution.stopped_at,
    )


class WorkflowService:
    def __init__(
        self,
        repo: WorkflowRepo,
        functions: FunctionRepo,
        on_start: Callable[[Execution], None],
        *,
        max_duration_sec: float = 365 * 24 * 3600,
    ) -> None:
        self.max_duration_sec = (
            max_duration_sec  # no execution runs longer (Step Functions: 1 year)
        )
        self.repo = repo
        self.functions = functions
        self._on_start = on_start  # hands the new execution to this worker's runner
        self._machines: BoundedCache[tuple[str, int], Machine] = BoundedCache(MACHINES_CACHED)

    # -- workflows -------------------------------------------------------------

    def _checked(self, raw: dict | str) -> dict:
        definition = parse_definition(raw)
        machine = compile_definition(definition)
        problems = []
        for where, state, resource in task_resources(machine):
            field = f"definition.{where}.Resource"
            try:
                # name, name:version or name:alias: the one target parser, as invoke uses it
                target = parse_target(resource, field=field)
                fn, _ = self.functions.resolve(target.function)
            except errors.NotFound:
                message = f"unknown function {resource.partition(':')[0]!r}"
                problems.append({"field": field, "state": state, "message": message})
            except errors.Invalid as exc:
                problems.append({"field": field, "state": state, "message": exc.message})
            else:
                # a version pruned (or never made) fails every execution's Task
                if target.version is not None and not self.functions.version_kept(
                    fn.id, target.version
                ):
                    message = f"function {fn.name} has no version {target.version}"
                    problems.append({"field": field, "state": state, "message": message})
        if problems:
            first = problems[0]
            raise errors.Invalid(
                f"invalid workflow definition: state {first['state']!r}: {first['message']}",
                details=problems,
            )
        return definition

    def view(self, workflow: Workflow) -> WorkflowView:
        definition = self.repo.version(workflow.id, workflow.version).definition
        return WorkflowView(**workflow.model_dump(), definition=definition)

    def create(self, body: WorkflowCreate) -> WorkflowView:
        definition = self._checked(body.definition)
        workflow = Workflow(id=new_id("wf_"), name=body.name, description=body.description or "")
        self.repo.create(
            workflow, WorkflowVersion(workflow_id=workflow.id, version=1, definition=definition)
        )
        return WorkflowView(**workflow.model_dump(), definition=definition)

    def get(self, ref: str) -> WorkflowView:
        return self.view(self.repo.resolve(ref))

    def list(self, *, name: str | None = None, limit: int = 20, offset: int = 0) -> WorkflowList:
        _page(limit, offset)
        found = [w for w in self.repo.list() if not name or name in w.name]
        found.sort(key=lambda w: w.created_at)
        return WorkflowList(
            workflows=[self.view(w) for w in found[offset : offset + limit]],
            total=len(found),
            limit=limit,
            offset=offset,
        )

    def update(self, ref: str, body: WorkflowUpdate) -> WorkflowView:
        workflow = self.repo.resolve(ref)

        def edit(record: Workflow) -> None:
            if body.description is not None:
                record.description = body.description

        if body.definition is not None:
            definition = self._checked(body.definition)
            current = self.repo.version(workflow.id, workflow.version).definition
            if definition != current:
                return self.view(self.repo.new_version(workflow.id, definition, edit))
        return self.view(self.repo.update(workflow.id, edit))

    def delete(self, ref: str) -> None:
        self.repo.delete(self.repo.resolve(ref))

    def machine(self, workflow_id: str, version: int) -> Machine:
        """The compiled definition of one version (immutable, so compiled once per worker)."""
        key = (workflow_id, version)
        found = self._machines.get(key)
        if found is None:
            record = self.repo.version(workflow_id, version)
            found = self._machines.put(key, compile_definition(record.definition))
        return found

    # -- executions --------------------------------------------------------------

    def start(
        self,
        ref: str,
        body: bytes,
        *,
        execution_id: str | None = None,
        started_at: datetime | None = None,
    ) -> ExecutionView:
        """Start an execution. A schedule's tick names its `execution_id` and gives its
        instant as `started_at`: every worker offering it then writes the same marker and
        index keys, and the record's create-only write lets one through (Conflict for
        the others)."""
        if len(body) > INPUT_LIMIT:
            raise errors.TooLarge(
                f"an execution's input may be {INPUT_LIMIT} bytes; this one is {len(body)}"
            )
        data = _parse_input(body)
        workflow = self.repo.resolve(ref)
        machine = self.machine(workflow.id, workflow.version)
        wall = time.time() if started_at is None else started_at.timestamp()
        execution = Execution(
            id=execution_id or new_id("ex_"),
            workflow_id=workflow.id,
            workflow_name=workflow.name,
            workflow_version=workflow.version,
            input=data,
            due=wall,
            deadline=wall
            + min(machine.timeout_seconds or self.max_duration_sec, self.max_duration_sec),
            branches={0: Branch(id=0, state=machine.start_at, input=data)},
            **({"started_at": started_at} if started_at is not None else {}),
        )
        execution.history_tail.append(
            HistoryEvent(
                id=1,
                type="ExecutionStarted",
                details={"input": data, "workflow_version": workflow.version},
            )
        )
        execution.history_count = 1
        self.repo.start(execution)
        self._on_start(execution)
        return execution_view(execution)

    def execution(self, execution_id: str) -> ExecutionView:
        return execution_view(self.repo.execution(execution_id)[0])

    def executions(
        self, ref: str, *, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> ExecutionList:
        _page(limit, offset)
        if status is not None and status not in ExecutionStatus.__members__:
            raise errors.Invalid.field("status", f"one of {', '.join(ExecutionStatus.__members__)}")
        workflow = self.repo.resolve(ref)
        found = []
        for execution_id in self.repo.executions_of(workflow.id):
            try:
                execution = self.repo.execution(execution_id)[0]
            except errors.NotFound:
                continue  # its start crashed before the record
            if status is None or execution.status == status:
                found.append(execution)
        return ExecutionList(
            executions=[execution_view(e) for e in found[offset : offset + limit]],
            total=len(found),
            limit=limit,
            offset=offset,
        )

    def history(self, execution_id: str) -> HistoryView:
        execution = self.repo.execution(execution_id)[0]
        events = self.repo.history(execution)
        return HistoryView(events=[HistoryEventView(**e.model_dump()) for e in events])

    def stop(self, execution_id: str, error: str | None, cause: str | None) -> ExecutionView:
        """Abort a running execution. Its record turns final at once; a runner holding it
        finds its next write refused and drops whatever it was doing."""
        old_marker: list[str | None] = []

        def abort(execution: Execution) -> bool:
            if execution.final:
                raise errors.Conflict(
                    f"execution {execution_id} already {execution.status.value}",
                    code="already_stopped",
                )
            execution.status = ExecutionStatus.aborted
            execution.error, execution.cause = error, cause
            execution.stopped_at = now()
            execution.lease_owner = execution.lease_until = None
            old_marker[:] = [execution.marker]
            execution.marker = None
            execution.history_count += 1
            execution.history_tail.append(
                HistoryEvent(
                    id=execution.history_count,
                    type="ExecutionAborted",
                    details=_drop_none({"error": error, "cause": cause}),
                )
            )
            self.repo.seal_history(execution)
            return True

        execution = self.repo.update_execution(execution_id, abort)
        if old_marker:
            self.repo.drop_marker(old_marker[0])
        return execution_view(execution)


def _parse_input(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(
            f"the execution input is not valid JSON: {exc}", code="invalid_json"
        ) from None
    if nests_deeper_than(data):
        raise errors.Invalid.field("input", f"nests deeper than {MAX_JSON_DEPTH} levels")
    return data


def _drop_none(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}

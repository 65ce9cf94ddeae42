"""What still refers to a function's versions and aliases: the one check pruning and
alias deletion ask.

Every kind of record that can name a version or an alias adds itself here, and
only here: `version_references` for what pruning must keep, `alias_references`
for what makes deleting an alias a 409 `in_use`. Schedules name them by their
qualifier; workflows by a Task's `Resource` (`name:3`, `name:prod`), in each
workflow's latest definition and in the definitions running executions follow.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator

from . import errors
from ._base import Store
from .invocations import InvocationRepo
from .records import ExecutionStatus, Function
from .schedules import ScheduleRepo
from .workflows import WorkflowRepo

_FAR_FUTURE = 9_999_999_999.0  # Unix seconds: every queue marker is due by then


def version_references(store: Store, fn: Function) -> dict[int, list[str]]:
    """Every version of `fn` something refers to → what does. Never pruned:

    - the active version;
    - a version an alias points or routes to, or that an alias's canary moves to;
    - a version with queued or running async invocations (fixed at accept time);
    - a version a schedule or a workflow's Task names (`name:3`).
    """
    refs: dict[int, list[str]] = defaultdict(list, fn.version_users())
    invocations = InvocationRepo(store)
    for entry in invocations.queue():
        if entry.function_id not in (None, fn.id):
            continue  # another function's (its marker says): no read
        with contextlib.suppress(errors.NotFound):
            record, _ = invocations.get(entry.invocation_id)
            if record.function_id == fn.id and not record.final:
                refs[record.version].append(f"async invocation {record.id}")
    for schedule in ScheduleRepo(store).list_for(fn.id):
        if schedule.qualifier and schedule.qualifier.isdigit():
            refs[int(schedule.qualifier)].append(f"schedule {schedule.id}")
    for user, qualifier in _workflow_qualifiers(store, fn):
        if qualifier.isdigit():
            refs[int(qualifier)].append(user)
    return dict(refs)


def alias_references(store: Store, fn: Function, alias: str) -> list[str]:
    """What names `fn:alias` and would break if the alias went (→ 409 `in_use`)."""
    users = [
        f"schedule {schedule.id}"
        for schedule in ScheduleRepo(store).list_for(fn.id)
        if schedule.qualifier == alias
    ]
    users += sorted({user for user, qualifier in _workflow_qualifiers(store, fn)
                     if qualifier == alias})  # fmt: skip
    return users


def _workflow_qualifiers(store: Store, fn: Function) -> Iterator[tuple[str, str]]:
    """(which workflow, qualifier) of every Task whose Resource names `fn` with a
    version or an alias: in each workflow's latest definition (new executions start
    on it) and in those its running executions follow."""
    repo = WorkflowRepo(store)
    definitions = {(w.id, w.version): w.name for w in repo.list()}
    for _, execution_id in repo.due(_FAR_FUTURE):
        with contextlib.suppress(errors.NotFound):
            execution, _ = repo.execution(execution_id)
            if execution.status == ExecutionStatus.running:
                key = (execution.workflow_id, execution.workflow_version)
                definitions.setdefault(key, execution.workflow_name)
    for (workflow_id, version), name in definitions.items():
        try:
            definition = repo.version(workflow_id, version).definition
        except errors.NotFound:
            continue  # deleted while we looked
        for resource in _task_resources(definition):
            function, colon, qualifier = resource.partition(":")
            if colon and function in (fn.name, fn.id):
                yield f"workflow {name}", qualifier


def _task_resources(node: object) -> Iterator[str]:
    """Every Task's Resource in an Amazon States Language definition, however deeply
    nested (Parallel branches, Map iterators)."""
    if isinstance(node, dict):
        if node.get("Type") == "Task" and isinstance(node.get("Resource"), str):
            yield node["Resource"]
        for value in node.values():
            yield from _task_resources(value)
    elif isinstance(node, list):
        for value in node:
            yield from _task_resources(value)

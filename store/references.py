"""What still refers to a function's versions and aliases: the one check pruning and
alias deletion ask.

Every kind of record that can name a version or an alias adds itself here, and
only here: `version_references` for what pruning must keep, `alias_references`
for what makes deleting an alias a 409 `in_use`. Workflows add their task
targets the same way when they name a function's version or alias.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

from . import errors
from ._base import Store
from .invocations import InvocationRepo
from .records import Function
from .schedules import ScheduleRepo


def version_references(store: Store, fn: Function) -> dict[int, list[str]]:
    """Every version of `fn` something refers to → what does. Never pruned:

    - the active version;
    - a version an alias points or routes to, or that an alias's canary moves to;
    - a version with queued or running async invocations (fixed at accept time);
    - a version a schedule names (`name:3`).
    """
    refs: dict[int, list[str]] = defaultdict(list)
    if fn.active_version is not None:
        refs[fn.active_version].append("active version")
    for alias in fn.aliases.values():
        for number in alias.versions():
            refs[number].append(f"alias {alias.name}")
        if alias.canary is not None:
            refs[alias.canary.version].append(f"canary of alias {alias.name}")
    invocations = InvocationRepo(store)
    for _, invocation_id in invocations.queued():
        with contextlib.suppress(errors.NotFound):
            record, _ = invocations.get(invocation_id)
            if record.function_id == fn.id and not record.final:
                refs[record.version].append(f"async invocation {record.id}")
    for schedule in ScheduleRepo(store).list_for(fn.id):
        if schedule.qualifier and schedule.qualifier.isdigit():
            refs[int(schedule.qualifier)].append(f"schedule {schedule.id}")
    return dict(refs)


def alias_references(store: Store, fn: Function, alias: str) -> list[str]:
    """What names `fn:alias` and would break if the alias went (→ 409 `in_use`)."""
    return [
        f"schedule {schedule.id}"
        for schedule in ScheduleRepo(store).list_for(fn.id)
        if schedule.qualifier == alias
    ]

"""Starting and aborting an alias's automatic canary (the steps are `jobs/canary.py`'s)."""

from __future__ import annotations

import time

from store import errors
from store.canaries import CanaryJob, CanaryRepo
from store.functions import FunctionRepo
from store.history import HistoryRepo
from store.records import CanaryEvent, CanaryState, CanaryStatus, Function, HistoryEntry, now

from ..schemas import AliasView, CanaryBody
from .aliases import AliasService
from .versions import refuse_unready


class CanaryService:
    def __init__(
        self, repo: FunctionRepo, canaries: CanaryRepo, history: HistoryRepo, aliases: AliasService
    ) -> None:
        self.repo = repo
        self.canaries = canaries
        self.history = history
        self.aliases = aliases

    def start(self, ref: str, name: str, body: CanaryBody, *, actor: str) -> AliasView:
        fn, _ = self.repo.resolve(ref)
        refuse_unready(self.repo.get_version(fn.id, body.version)[0])
        started: list[int] = []

        def begin(current: Function) -> Function:
            alias = self.aliases._alias(current, name)
            if alias.canary is not None and alias.canary.status == CanaryStatus.progressing:
                raise errors.Conflict(f"alias {name!r} already has a canary", code="canary_running")
            if body.version == alias.version:
                raise errors.Invalid(
                    "version: the alias already serves it",
                    details=[{"field": "version", "message": "the alias already serves it"}],
                )
            started[:] = [alias.version]
            weight = body.steps[0]
            alias.canary = CanaryState(
                version=body.version, from_version=alias.version, weight=weight, step=0,
                steps=body.steps, interval_sec=body.interval_sec,
                max_error_rate=body.max_error_rate, min_invocations=body.min_invocations,
                max_p99_ms=body.max_p99_ms, on_idle=body.on_idle,
                idle_intervals=body.idle_intervals,
                history=[CanaryEvent(step=0, weight=weight, decision="started")],
            )  # fmt: skip
            alias.routing = {body.version: weight}
            alias.updated_at = current.updated_at = now()
            return current

        fn = self.repo.update_function(fn.id, begin)
        self.canaries.start(CanaryJob(function_id=fn.id, alias=name, step=0,
                                      next_due=time.time() + body.interval_sec))  # fmt: skip
        self.history.append(fn.id, HistoryEntry(
            action="canary_started", alias=name, from_version=started[0],
            to_version=body.version, actor=actor,
            reason=f"steps {', '.join(f'{s:g}%' for s in body.steps)}, "
                   f"every {body.interval_sec:g} s"))  # fmt: skip
        return self.aliases.view(fn.aliases[name])

    def abort(self, ref: str, name: str, *, actor: str) -> AliasView:
        fn, _ = self.repo.resolve(ref)

        def stop(current: Function) -> Function:
            alias = self.aliases._alias(current, name)
            canary = alias.canary
            if canary is None or canary.status != CanaryStatus.progressing:
                raise errors.NotFound(f"alias {name!r} has no canary in progress")
            canary.status, canary.reason = CanaryStatus.aborted, "aborted by a user"
            canary.finished_at = now()
            canary.history.append(CanaryEvent(step=canary.step, weight=0, decision="aborted"))
            alias.version, alias.routing = canary.from_version, {}
            alias.updated_at = current.updated_at = now()
            return current

        fn = self.repo.update_function(fn.id, stop)
        self.canaries.stop(fn.id, name)
        canary = fn.aliases[name].canary
        self.history.append(fn.id, HistoryEntry(
            action="canary_aborted", alias=name, from_version=canary.version,
            to_version=canary.from_version, actor=actor))  # fmt: skip
        return self.aliases.view(fn.aliases[name])

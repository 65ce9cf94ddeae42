"""Workflow, version and execution records, and the executions' queue.

Key layout (JSON unless noted):

    workflows/<id>.json                          Workflow
    workflow-names/<name>.json                   WorkflowNameClaim (create-only)
    workflow-versions/<id>/<n:08d>.json          WorkflowVersion (immutable)
    workflow-executions/<id>/<age>.<ex_id>       index of a workflow's executions (empty);
                                                 <age> = 9999999999999 minus start Unix ms
    executions/<ex_id>.json                      Execution: the whole running state
    execution-history/<ex_id>/<page:06d>.<token>.json
                                                 sealed pages of history events (create-only;
                                                 the record names each page's token)
    queue/executions/<due_ms:013d>.<ex_id>       the runner's queue (empty): due first

An execution's marker is written before its record, so a crash leaves at
worst a marker without a record (dropped once it has stayed so for a minute). A marker names
when a runner should next look: its start, or the end of the Wait it sleeps in.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from pydantic import BaseModel, TypeAdapter

from . import errors
from ._base import Store
from .functions import SCHEDULES_CHANGED_KEY, schedule_prefix
from .leases import Claim, Leases
from .records import (
    Execution,
    HistoryEvent,
    Workflow,
    WorkflowNameClaim,
    WorkflowVersion,
    now,
    parse_record,
    parse_stored,
)

M = TypeVar("M", bound=BaseModel)
HISTORY_PAGE = 100  # events per sealed page
_AGE_BASE = 10**13 - 1
_CAS_ATTEMPTS = 100
_events = TypeAdapter(list[HistoryEvent])


def workflow_key(workflow_id: str) -> str:
    return f"workflows/{workflow_id}.json"


def workflow_name_key(name: str) -> str:
    return f"workflow-names/{name}.json"


def workflow_version_key(workflow_id: str, version: int) -> str:
    return f"workflow-versions/{workflow_id}/{version:08d}.json"


def execution_key(execution_id: str) -> str:
    return f"executions/{execution_id}.json"


def execution_index_key(workflow_id: str, started_ms: int, execution_id: str) -> str:
    return f"workflow-executions/{workflow_id}/{_AGE_BASE - started_ms:013d}.{execution_id}"


def history_page_key(execution_id: str, page: int, token: str = "") -> str:
    """A sealed page's key; one without a token was sealed by an older Nimbus."""
    return f"execution-history/{execution_id}/{page:06d}{'.' + token if token else ''}.json"


def queue_marker_key(due: float, execution_id: str) -> str:
    return f"queue/executions/{int(due * 1000):013d}.{execution_id}"


QUEUE_PREFIX = "queue/executions/"


class WorkflowRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _read(self, key: str, model: type[BaseModel], what: str):
        try:
            blob = self.store.get(key)
        except (errors.NotFound, errors.Invalid):
            raise errors.NotFound(f"{what} not found") from None
        return parse_record(model, blob.data, key), blob.etag

    def _write(self, key: str, record: BaseModel, **conditions) -> str:
        return self.store.put(key, record.model_dump_json().encode(), **conditions)

    # -- workflows ---------------------------------------------------------------

    def create(self, workflow: Workflow, first: WorkflowVersion) -> None:
        """Claim the name, write version 1, then the record; a taken name is a Conflict."""
        try:
            self._write(
                workflow_name_key(workflow.name),
                WorkflowNameClaim(workflow_id=workflow.id),
                create=True,
            )
        except errors.Conflict:
            claim, etag = self._read(workflow_name_key(workflow.name), WorkflowNameClaim, "name")
            if self.store.exists(workflow_key(claim.workflow_id)):
                raise errors.Conflict(
                    f"a workflow named {workflow.name!r} already exists", code="name_taken"
                ) from None
            # a create that crashed before its record: the name is free
            self._write(
                workflow_name_key(workflow.name),
                WorkflowNameClaim(workflow_id=workflow.id),
                if_match=etag,
            )
        self._write(workflow_version_key(workflow.id, first.version), first, create=True)
        self._write(workflow_key(workflow.id), workflow, create=True)

    def get(self, workflow_id: str) -> tuple[Workflow, str]:
        return self._read(workflow_key(workflow_id), Workflow, f"workflow {workflow_id!r}")

    def resolve(self, ref: str) -> Workflow:
        """A workflow by id (`wf_…`) or by name."""
        if ref.startswith("wf_"):
            return self.get(ref)[0]
        claim, _ = self._read(workflow_name_key(ref), WorkflowNameClaim, f"workflow {ref!r}")
        try:
            return self.get(claim.workflow_id)[0]
        except errors.NotFound:
            raise errors.NotFound(f"workflow {ref!r} not found") from None

    def list(self) -> Iterator[Workflow]:
        for key in self.store.list("workflows/"):
            try:
                yield self._read(key, Workflow, key)[0]
            except errors.NotFound:
                continue  # deleted while we listed

    def version(self, workflow_id: str, version: int) -> WorkflowVersion:
        key = workflow_version_key(workflow_id, version)
        return self._read(key, WorkflowVersion, f"workflow {workflow_id!r} version {version}")[0]

    def new_version(self, workflow_id: str, definition: dict, mutate: Callable[[Workflow], None]):
        """Write the next version (create-only, so concurrent edits get distinct numbers),
        then point the workflow at it; `mutate` applies the edit's other fields."""
        for attempt in range(_CAS_ATTEMPTS):
            workflow, etag = self.get(workflow_id)
            number = workflow.version + 1
            try:
                self._write(
                    workflow_version_key(workflow_id, number),
                    WorkflowVersion(workflow_id=workflow_id, version=number, definition=definition),
                    create=True,
                )
            except errors.Conflict:
                _backoff(attempt)  # someone else's edit took this number; read again
                continue
            workflow.version = number
            mutate(workflow)
            workflow.updated_at = now()
            try:
                self._write(workflow_key(workflow_id), workflow, if_match=etag)
            except errors.Conflict:
                # the record moved on meanwhile (another field's edit): nothing names our
                # version yet, so it goes, and the edit is made again on the record as it is
                self.store.delete(workflow_version_key(workflow_id, number))
                _backoff(attempt)
                continue
            return workflow
        raise errors.Unavailable(f"too much contention updating workflow {workflow_id}")

    def update(self, workflow_id: str, mutate: Callable[[Workflow], None]) -> Workflow:
        def edit(workflow: Workflow) -> bool:
            mutate(workflow)
            workflow.updated_at = now()
            return True

        return self._swap(workflow_key(workflow_id), edit, self.get)

    def _swap(self, key: str, mutate: Callable[[M], bool], read: Callable[[str], tuple[M, str]]):
        """Read-modify-write with compare-and-swap; `mutate` returns False for no change."""
        record_id = key.rsplit("/", 1)[1].removesuffix(".json")
        for attempt in range(_CAS_ATTEMPTS):
            record, etag = read(record_id)
            if not mutate(record):
                return record
            try:
                self._write(key, record, if_match=etag)
                return record
            except errors.Conflict:
                _backoff(attempt)
        raise errors.Unavailable(f"too much contention updating {key}")

    def delete(self, workflow: Workflow) -> None:
        """Remove the record (no new executions), its name and its versions' index.

        Executions keep their own records (input, output, history) and stay readable;
        the workflow's schedules go.
        """
        self.store.delete(workflow_key(workflow.id))
        try:
            claim, etag = self._read(workflow_name_key(workflow.name), WorkflowNameClaim, "")
            if claim.workflow_id == workflow.id:
                self.store.delete(workflow_name_key(workflow.name), if_match=etag)
        except (errors.NotFound, errors.Conflict):
            pass
        for prefix in (f"workflow-versions/{workflow.id}/", f"workflow-executions/{workflow.id}/"):
            self.store.delete_prefix(prefix)
        schedules = list(self.store.list(schedule_prefix(workflow.id)))
        self.store.delete_keys(schedules)
        if schedules:
            self.store.put(SCHEDULES_CHANGED_KEY, now().isoformat().encode())

    # -- executions -----------------------------------------------------------------

    def start(self, execution: Execution) -> None:
        """Make an execution durable: marker, index, then the record (create-only)."""
        execution.marker = queue_marker_key(execution.due, execution.id)
        self.store.put(execution.marker, b"")
        started_ms = int(execution.started_at.timestamp() * 1000)
        self.store.put(execution_index_key(execution.workflow_id, started_ms, execution.id), b"")
        self._write(execution_key(execution.id), execution, create=True)

    def execution(self, execution_id: str) -> tuple[Execution, str]:
        return self._read(execution_key(execution_id), Execution, f"execution {execution_id!r}")

    def claim_execution(self, leases: Leases, execution_id: str, **how) -> Claim[Execution] | None:
        """Claim an execution to run its next step (`how`: as for `Leases.claim`);
        NotFound if its record was never written."""
        return leases.claim(execution_key(execution_id), Execution, **how)

    def execution_exists(self, execution_id: str) -> bool:
        return self.store.exists(execution_key(execution_id))

    def executions_of(self, workflow_id: str) -> list[str]:
        """Execution ids of a workflow, newest first (one listing, no reads)."""
        return [
            key.rsplit("/", 1)[1].partition(".")[2]
            for key in self.store.list(f"workflow-executions/{workflow_id}/")
        ]

    def update_execution(self, execution_id: str, mutate: Callable[[Execution], bool]):
        """Read-modify-write outside any lease (a stop); `mutate` returns False for no change."""
        return self._swap(execution_key(execution_id), mutate, self.execution)

    # -- history --------------------------------------------------------------------

    def seal_history(self, execution: Execution, *, whole_tail: bool = False) -> bool:
        """Move full pages of the tail into their own objects (before the record's write);
        `whole_tail`: the tail's events are large, seal them all now. True if it sealed.

        NOTE(nimbus): a page is written create-only under a key of its own (a fresh
        token), never over another: two writers that read the same record both seal
        "page n", and only the one whose compare-and-swap of the record lands names its
        page. The loser's page (or a crashed writer's) is left unnamed, never read; a
        page at a fixed key let a writer that lost its swap (a step racing a stop)
        replace the page the winner's record named, losing the winner's events.
        """
        sealed = False
        while execution.history_tail and (
            len(execution.history_tail) >= HISTORY_PAGE or (whole_tail and not sealed)
        ):
            size = min(HISTORY_PAGE, len(execution.history_tail))
            page, execution.history_tail = (
                execution.history_tail[:size],
                execution.history_tail[size:],
            )
            token = self._put_page(execution.id, execution.history_pages, _events.dump_json(page))
            execution.history_page_tokens.append(token)
            execution.history_pages += 1
            sealed = True
        return sealed

    def _put_page(self, execution_id: str, number: int, data: bytes) -> str:
        for _ in range(3):
            token = secrets.token_hex(6)
            try:
                self.store.put(history_page_key(execution_id, number, token), data, create=True)
                return token
            except errors.Conflict:
                continue  # 48 random bits taken: never seen; draw again
        raise errors.Unavailable(f"no free key for page {number} of execution {execution_id}")

    def history(self, execution: Execution) -> list[HistoryEvent]:
        events: list[HistoryEvent] = []
        tokens = execution.history_page_tokens
        untokened = execution.history_pages - len(tokens)  # sealed before tokens were
        for page in range(execution.history_pages):
            token = tokens[page - untokened] if page >= untokened else ""
            key = history_page_key(execution.id, page, token)
            try:
                data = self.store.get(key).data
            except errors.NotFound:
                if token:
                    raise
                key = self._unnamed_page(execution.id, page)
                data = self.store.get(key).data
            events.extend(parse_stored(_events, data, key))
        return events + execution.history_tail

    def _unnamed_page(self, execution_id: str, number: int) -> str:
        """The key of a page the record counts but names no token for, and that is not
        under its bare number: sealed under a token, which a replica of an older Nimbus
        dropped when it rewrote the record during a rolling update (it keeps no field it
        does not know). The page's only key under its number is that page; one listing.

        NOTE(nimbus): if a writer that lost its swap left a second page under the same
        number, the record no longer says which is its own: refused, never guessed.
        """
        bare = history_page_key(execution_id, number)
        found = list(self.store.list(bare.removesuffix("json")))
        if len(found) != 1:
            raise errors.RecordUnreadable(
                f"{bare}: page {number} of the history of execution {execution_id} is "
                f"{'missing' if not found else 'one of ' + str(len(found)) + ' unnamed pages'}"
            )
        return found[0]

    # -- the runner's queue -----------------------------------------------------------

    def due(self, until: float) -> Iterator[tuple[str, str]]:
        """(marker key, execution id) of markers due by `until`, oldest first."""
        limit = queue_marker_key(until, "")
        for key in self.store.list(QUEUE_PREFIX):
            if key > limit:
                return
            execution_id = key.rsplit("/", 1)[1].partition(".")[2]
            if execution_id:
                yield key, execution_id

    def move_marker(self, execution: Execution, due: float) -> str | None:
        """Write the marker for `due` (returning the old one's key to drop after the
        record's write): the record always names a marker that exists."""
        old = execution.marker
        execution.marker = queue_marker_key(due, execution.id)
        if execution.marker == old:
            return None
        self.store.put(execution.marker, b"")
        return old

    def drop_marker(self, key: str | None) -> None:
        if key:
            self.store.delete(key)


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05, 0.001 * (2 ** min(attempt, 6))) * random.random())

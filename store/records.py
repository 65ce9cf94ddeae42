"""The durable records (pydantic v2) and their status model.

A function has immutable numbered versions; each version carries its build
state (`queued → building → ready | failed`). The function's own status says
whether it serves and is derived, never stored twice.

A record's `runtime` is the canonical name the gateway checked against the
runtime registry (`compiler.RUNTIMES`); the store keeps it as a plain string
and knows no languages (docs/decisions/0008-one-runtime-registry.md).
"""

from __future__ import annotations

import base64
import itertools
import logging
import os
import re
import secrets
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from . import errors

log = logging.getLogger("nimbus.store")

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
ID_PREFIX = "fn_"
FUNCTION_ID_RE = re.compile(r"^fn_[a-z0-9]{1,64}\Z")


# A user's JSON (an execution's input, a workflow definition, an async result) kept in a
# record nests at most this deep. NOTE: pydantic reads a record back only up to ~200
# levels in all (and writes one up to ~255): the record's own nesting (an execution's
# branches, a history page's events) needs the rest.
MAX_JSON_DEPTH = 128


def nests_deeper_than(value: object, depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON value has arrays or objects more than `depth` levels deep (iterative:
    the value may be deeper than Python's recursion limit)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue  # a scalar
        if level > depth:
            return True
        stack.extend((child, level + 1) for child in item)
    return False


R = TypeVar("R", bound=BaseModel)


def parse_record(model: type[R], data: bytes, key: str) -> R:
    """The record stored at `key`. One that does not validate is `RecordUnreadable` (a
    500 naming the key, logged): a `ValidationError` would be answered as the caller's
    422 although the caller sent nothing wrong."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise _unreadable(key, exc) from None


def parse_stored(adapter: TypeAdapter, data: bytes, key: str) -> Any:
    """`parse_record` for what a TypeAdapter reads (a list of records)."""
    try:
        return adapter.validate_json(data)
    except ValidationError as exc:
        raise _unreadable(key, exc) from None


def _unreadable(key: str, exc: ValidationError) -> errors.RecordUnreadable:
    problems = exc.errors(include_url=False)
    first = problems[0]
    where = ".".join(str(p) for p in first["loc"]) or "the record"
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    log.error("the stored record %s cannot be read: %s", key, exc)
    return errors.RecordUnreadable(
        f"the stored record {key} cannot be read ({where}: {first['msg']}{more}): it was "
        "written by another Nimbus version or changed outside Nimbus; the server's log has it"
    )


def now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str = ID_PREFIX) -> str:
    # 80 random bits in lower-case base32: never a valid DNS-label name because of "_".
    return prefix + base64.b32encode(secrets.token_bytes(10)).decode().lower()


class _SequentialIds:
    """Unique ids from a random per-process tag and a counter.

    PERF(nimbus): one or two per request, so no syscall and no encoding per id
    (uuid4 and token_bytes were ~10% of a worker's time under load, base32 of
    the counter another 3%, and a getpid() per id to notice a fork ~1 µs). The
    tag is made again in a forked child (`os.register_at_fork`), so workers
    never share it.
    """

    def __init__(self) -> None:
        self._renew()
        os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self._tag = base64.b32encode(secrets.token_bytes(5)).decode().lower()
        self._counter = itertools.count()

    def __call__(self, prefix: str) -> str:
        return f"{prefix}{self._tag}{next(self._counter):08x}"

    def timed(self, prefix: str, at: float | None = None) -> str:
        """An id that says when it was made (Unix seconds, 8 hex digits first):
        `id_time` reads it back, so a log lookup by id reads only batches near it."""
        seconds = int(time.time() if at is None else at)
        return f"{prefix}{seconds:08x}{self._tag}{next(self._counter):08x}"


sequential_id = _SequentialIds()

_TIMED_ID = re.compile(r"[a-z]+_([0-9a-f]{8})[a-z2-7]{8}[0-9a-f]{8}\Z")
# a schedule tick's id ends in the tick's UTC time (gateway/jobs/schedules.py)
_TICK_ID = re.compile(r"[a-z]+_[a-z0-9]+-(\d{14})\Z")


def id_time(made_id: str) -> float | None:
    """When an id from `sequential_id.timed` (or a schedule's tick) was made, in Unix
    seconds; None for an id that does not say (one made before ids did)."""
    if found := _TIMED_ID.match(made_id):
        return float(int(found.group(1), 16))
    if found := _TICK_ID.match(made_id):
        try:
            return datetime.strptime(found.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return None
    return None


def new_webhook_key() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits


class BuildStatus(StrEnum):
    queued = "queued"
    building = "building"
    ready = "ready"
    failed = "failed"


class FunctionStatus(StrEnum):
    creating = "creating"
    active = "active"
    failed = "failed"
    offline = "offline"


class BuildMount(BaseModel):
    """A platform-made archive mounted read-only into a runtime deployment's guest."""

    guest_path: str  # e.g. "/python" (a runtime's stdlib), "/deps" (bundled requirements)
    key: str
    sha256: str


class Leased(BaseModel):
    """The lease fields of a record workers claim (store/leases.py).

    `lease` names the object holding them: the record itself here; a record
    that carries them in a part of itself (a version's build) overrides it.
    """

    attempts: int = 0  # claims so far, counted by `Leases.claim`
    lease_owner: str | None = None
    lease_until: float | None = None  # Unix seconds

    @property
    def lease(self) -> Leased:
        return self


class Hold(BaseModel):
    """A standalone lease object (`Leases.hold`): which worker does a job until when."""

    owner: str
    until: float  # Unix seconds
    since: float | None = None


Totals = TypeVar("Totals")


class WorkerStats(BaseModel, Generic[Totals]):
    """`stats/workers/<writer>.json`: one worker's invocation totals since it started.

    What `totals` counts (and how totals add up) is the gateway's telemetry:
    the store keeps the record, its key and its compare-and-swap (store/stats.py).
    """

    writer: str
    updated_at: datetime = Field(default_factory=now)
    totals: Totals
    folding: bool = False  # being folded into the total; its writer no longer owns it


class FoldedStats(BaseModel, Generic[Totals]):
    """`stats/total.json`: totals of workers that stopped, and which ones they were."""

    totals: Totals
    folded: dict[str, datetime] = Field(default_factory=dict)  # writer → when folded
    updated_at: datetime = Field(default_factory=now)


Window = TypeVar("Window")


class RawWindows(BaseModel, Generic[Window]):
    """One worker's 10 s windows of one function for one minute (store/windows.py):
    slot start (Unix s) → version → window. What a window counts, and how windows
    merge, is the gateway's telemetry (telemetry/windows.py)."""

    writer: str
    function_id: str
    minute: int
    slots: dict[int, dict[int, Window]] = Field(default_factory=dict)


class HourWindows(BaseModel, Generic[Window]):
    """One function's hour, rolled up from every worker's raw windows to 1 min slots."""

    function_id: str
    hour: int
    slots: dict[int, dict[int, Window]] = Field(default_factory=dict)


class RolledHour(BaseModel):
    """The hour's roll-up is complete (and whether its raw objects are gone)."""

    hour: int
    functions: int
    raw_deleted: bool = False


class Build(Leased):
    status: BuildStatus = BuildStatus.queued
    error: str | None = None
    queued_at: datetime = Field(default_factory=now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    artifact_key: str | None = None
    artifact_sha256: str | None = None
    artifact_kind: str | None = None  # "module" | "component" | "native"
    precompiled_key: str | None = None
    runtime_version: str | None = None
    log_key: str | None = None
    # artifact_kind "runtime": the artifact is a shared language runtime; these
    # are the function's own code as it takes it, and what it mounts read-only.
    bundle_key: str | None = None
    bundle_sha256: str | None = None
    mounts: list[BuildMount] = Field(default_factory=list)


class Version(BaseModel):
    """One immutable version of a function's code and configuration."""

    function_id: str
    version: int
    runtime: str
    handler: str | None = None
    form: str | None = None
    target: str | None = None
    source_key: str
    source_kind: str  # "files" (JSON map of path → text) | "binary"
    source_sha256: str
    code_size: int
    requirements: list[str] = Field(default_factory=list)
    memory_mb: int
    timeout_sec: float
    env_vars: dict[str, str] = Field(default_factory=dict)
    # Warm instance reuse (opt-in): an instance may serve further calls of this
    # version on the worker that made it; never another version or function.
    reuse: bool = False

    description: str = ""  # the function's description when this version was made
    created_by: str = ""  # who made it ("key:<id>", "admin key"), for the history
    created_at: datetime = Field(default_factory=now)
    build: Build = Field(default_factory=Build)

    @property
    def lease(self) -> Leased:
        return self.build  # a version is claimed for its build


class BuildSummary(BaseModel):
    version: int
    status: BuildStatus
    error: str | None = None


class CanaryStatus(StrEnum):
    progressing = "progressing"
    promoted = "promoted"  # reached 100 %: the alias points at the new version alone
    rolled_back = "rolled_back"  # a step failed its thresholds: the old version alone
    aborted = "aborted"  # stopped by a user (DELETE …/canary): the old version alone


class CanaryEvent(BaseModel):
    at: datetime = Field(default_factory=now)
    step: int  # index into `steps`
    weight: float
    decision: str  # "started" | "promoted" | "held" | "rolled_back" | "completed" | "aborted"
    invocations: int = 0  # the canary version's own, during the step
    errors: int = 0
    error_rate: float | None = None
    p99_ms: float | None = None
    reason: str = ""
    decided_by: str = ""  # the worker that took the decision (its lease owner id)


class CarriedCalls(BaseModel):
    """The canary version's calls already in the 10 s stats slot a step began in: they
    belong to the step before and are taken off when the step is judged."""

    invocations: int = 0
    errors: int = 0
    latency: dict[int, int] = Field(default_factory=dict)  # histogram bucket → count


class CanaryState(BaseModel):
    """An alias's automatic canary, as the alias shows it (the job's lease is elsewhere)."""

    version: int
    from_version: int
    weight: float
    step: int
    steps: list[float]
    interval_sec: float
    max_error_rate: float
    min_invocations: int
    max_p99_ms: float | None = None
    # A step with fewer than `min_invocations` calls is held; after `idle_intervals`
    # such intervals `on_idle` says what happens: "hold" (on, with the reason shown),
    # "promote" (by time, as CodeDeploy's canaries do) or "rollback".
    on_idle: str = "hold"
    idle_intervals: int = 3
    held: int = 0  # intervals the current step has been held for want of calls
    carried: CarriedCalls | None = None  # the previous step's calls in this step's first slot
    status: CanaryStatus = CanaryStatus.progressing
    reason: str = ""
    started_at: datetime = Field(default_factory=now)
    step_started_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
    history: list[CanaryEvent] = Field(default_factory=list)


class Alias(BaseModel):
    """A name for a version, with optional weights to other versions (kept in the
    function record, so the invoke path resolves it from the record it already has)."""

    name: str
    version: int
    routing: dict[int, float] = Field(default_factory=dict)  # other version → % of calls
    description: str = ""
    webhook_key: str | None = None  # its own public URL, when asked for
    canary: CanaryState | None = None
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)

    def versions(self) -> set[int]:
        """Every version this alias may send a call to."""
        return {self.version, *self.routing}


class Function(BaseModel):
    """A function's identity and the metadata that does not make a version."""

    id: str
    name: str
    runtime: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    disabled: bool = False
    latest_version: int = 0
    active_version: int | None = None
    latest_build: BuildSummary | None = None
    runtime_version: str | None = None
    # The configuration of the version the next one is made from (`base_version`), kept
    # here so listings need one read.
    memory_mb: int = 128
    timeout_sec: float = 30
    reuse: bool = False
    handler: str | None = None  # None in records written before it was kept here
    code_size: int = 0
    env_var_names: list[str] = Field(default_factory=list)
    webhook_key: str | None = None
    webhook_enabled: bool = True
    # At most this many invocations at once per server (None: no cap of its own).
    max_concurrency: int | None = None
    # An async invocation that fails on its own terms runs again this many times (Lambda's
    # MaximumRetryAttempts); platform failures are retried regardless.
    async_retries: int = 0
    # The function (name) an async invocation that ends failed is sent to, as Lambda's
    # on-failure destination, in Lambda's destination record.
    async_on_failure: str | None = None
    aliases: dict[str, Alias] = Field(default_factory=dict)
    # The newest version a finished build ever made active: a rollback keeps it,
    # so a build's publish replayed later never undoes the rollback.
    highest_activated: int = 0
    # Set by a rollback to an older version: while that version serves, the next version
    # is made from it (its code and configuration), not from the newer one rolled back.
    rolled_back_to: int | None = None
    # Versions a prune has claimed and is deleting: no write may make one active or
    # aliased again (FunctionRepo.update_function), so a rollback racing the prune
    # either lands first (and the prune keeps that version) or gets 404.
    pruning: list[int] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)

    def version_users(self) -> dict[int, list[str]]:
        """The versions this record itself serves (active, aliased, routed or a canary's)
        → what serves each. Other records' references: store/references.py."""
        users: dict[int, list[str]] = {}
        if self.active_version is not None:
            users.setdefault(self.active_version, []).append("active version")
        for alias in self.aliases.values():
            for number in alias.versions():
                users.setdefault(number, []).append(f"alias {alias.name}")
            if alias.canary is not None:
                users.setdefault(alias.canary.version, []).append(f"canary of alias {alias.name}")
        return users

    def versions_in_use(self) -> set[int]:
        return set(self.version_users())

    @property
    def base_version(self) -> int:
        """The version the next one is made from and whose configuration this record shows:
        the one a rollback serves, else the latest (0: none yet)."""
        if self.rolled_back_to is not None and self.rolled_back_to == self.active_version:
            return self.rolled_back_to
        return self.latest_version

    def note_latest(self, version: Version) -> None:
        """`version` is the newest: the next one is made from it, and the record shows it."""
        self.latest_version = version.version
        self.rolled_back_to = None
        self.show_config(version)

    def show_config(self, version: Version) -> None:
        """Keep `version`'s configuration in the record (see `base_version`)."""
        self.memory_mb = version.memory_mb
        self.timeout_sec = version.timeout_sec
        self.reuse = version.reuse
        self.handler = version.handler
        self.code_size = version.code_size
        self.env_var_names = sorted(version.env_vars)

    @property
    def status(self) -> FunctionStatus:
        if self.disabled:
            return FunctionStatus.offline
        if self.active_version is not None:
            return FunctionStatus.active
        if self.latest_build is not None and self.latest_build.status == BuildStatus.failed:
            return FunctionStatus.failed
        return FunctionStatus.creating


class NameClaim(BaseModel):
    """`names/<name>` → id: the name's uniqueness rests on a create-only write."""

    function_id: str
    created_at: datetime = Field(default_factory=now)


class WebhookIndex(BaseModel):
    function_id: str
    alias: str | None = None  # an alias's own webhook URL


class HistoryEntry(BaseModel):
    """Who changed what serves a function, when, from which version to which."""

    at: datetime = Field(default_factory=now)
    action: str  # deploy | rollback | alias_created | alias_updated | alias_deleted | canary_*
    from_version: int | None = None
    to_version: int | None = None
    alias: str | None = None
    actor: str  # "key:<id>", "admin key", or "canary"
    reason: str = ""


class Trigger(StrEnum):
    """What started an invocation: one enum for records, logs, stats and metrics labels."""

    api = "api"  # POST /api/v1/functions/{ref}/invoke
    webhook = "webhook"  # /webhook/{key} (also with X-Nimbus-Invocation-Type: Event)
    async_ = "async"  # POST /api/v1/functions/{ref}/async
    schedule = "schedule"  # a cron or rate() tick
    workflow = "workflow"  # a workflow's Task state


class InvocationStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"


class Invocation(Leased):
    """An async invocation: durable before its 202, exactly one final state."""

    id: str
    function_id: str
    function_name: str
    version: int
    event: str  # the JSON event exactly as accepted
    trigger: Trigger = Trigger.async_
    status: InvocationStatus = InvocationStatus.queued
    schedule_id: str | None = None  # a schedule's tick (trigger "schedule")
    scheduled_at: datetime | None = None  # the tick's instant; created_at is when it fired
    not_before: float = 0.0  # Unix seconds: a retry waits out its backoff
    retries: int = 0  # runs again after the function's own failure (its async_retries)
    result: object | None = None
    error: dict | None = None
    duration_ms: float | None = None
    created_at: datetime = Field(default_factory=now)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def final(self) -> bool:
        return self.status in (
            InvocationStatus.succeeded,
            InvocationStatus.failed,
            InvocationStatus.timed_out,
        )


class Schedule(BaseModel):
    """A cron or `rate()` schedule: each tick becomes one async invocation of its function.

    The expression is kept as the user wrote it; the gateway parses it (the
    store knows no cron). `rate()` ticks fall on `anchor` plus whole periods,
    so every replica computes the same instants.
    """

    id: str  # sch_…
    function_id: str = ""  # what each tick runs: a function's async invocation…
    workflow_id: str | None = None  # …or a workflow's execution
    expression: str
    timezone: str = "UTC"
    event: str = "{}"  # the JSON event as given
    qualifier: str | None = None  # a version number or an alias; None: the active version
    enabled: bool = True
    description: str = ""
    anchor: datetime = Field(default_factory=now)
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)

    @property
    def owner_id(self) -> str:
        return self.workflow_id or self.function_id


class ScheduleRun(BaseModel):
    """The last tick a schedule fired (written by the replica that fired it)."""

    scheduled_at: datetime
    invocation_id: str


class KeyScope(StrEnum):
    """What an API key may do (docs: the per-route scope table in the README)."""

    admin = "admin"  # everything, keys included
    deploy = "deploy"  # create, change and delete; rollback, aliases; reads too
    invoke = "invoke"  # call functions, follow async invocations
    read = "read"  # every GET but the keys


class ApiKey(BaseModel):
    """A key's record; the secret itself is never stored, only its SHA-256."""

    id: str  # key_…; also the key's visible prefix (`nk_<id part>.…`)
    name: str
    scopes: list[KeyScope]
    secret_sha256: str
    created_at: datetime = Field(default_factory=now)
    last_used_at: datetime | None = None


# -- workflows (Amazon States Language) ------------------------------------------------


class Workflow(BaseModel):
    """A workflow's identity; its definitions are numbered, immutable `WorkflowVersion`s."""

    id: str
    name: str
    description: str = ""
    version: int = 1  # the latest: new executions start on it
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class WorkflowVersion(BaseModel):
    workflow_id: str
    version: int
    definition: dict
    created_at: datetime = Field(default_factory=now)


class WorkflowNameClaim(BaseModel):
    workflow_id: str
    created_at: datetime = Field(default_factory=now)


class ExecutionStatus(StrEnum):
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    aborted = "aborted"


class BranchPhase(StrEnum):
    enter = "enter"  # about to run `state` on `input`
    task = "task"  # a Task is (or was, before a crash) in flight
    sleep = "sleep"  # a Wait, or a Retry's backoff, until `due`
    fork = "fork"  # a Parallel/Map waits for its `children`
    done = "done"  # the branch's machine ended: `output`
    failed = "failed"  # the branch's machine failed: `error`, `cause`


class Branch(BaseModel):
    """One thread of an execution: the top machine, a Parallel branch or a Map item.

    Everything the runner needs to take the next step after a crash is here.
    """

    id: int
    parent: int | None = None  # the branch whose Parallel/Map forked this one
    index: int = 0  # position among its siblings (the order of the outputs)
    machine: str = ""  # which machine of the definition ("" is the top one)
    item: list | None = None  # a Map item: [index, value], for $$.Map.Item
    started: bool = True  # a Map item waits for a MaxConcurrency slot until started
    state: str | None = None
    input: object | None = None  # the current state's raw input
    entered_at: datetime = Field(default_factory=now)
    phase: BranchPhase = BranchPhase.enter
    due: float | None = None  # Unix seconds: when a sleep ends
    resume: str = "enter"  # after a sleep: "enter" (a Retry) or "wait" (a Wait's end)
    carry: object | None = None  # a Wait's effective input
    retries: dict[int, int] = Field(default_factory=dict)  # attempts used per Retry clause
    task_starts: int = 0  # TaskStarted events for the current state (a crash may add one)
    children: list[int] = Field(default_factory=list)
    max_concurrency: int = 0
    output: object | None = None
    error: str | None = None
    cause: str | None = None


class HistoryEvent(BaseModel):
    id: int
    timestamp: datetime = Field(default_factory=now)
    type: str  # Step Functions' names: TaskStateEntered, TaskSucceeded, ExecutionFailed, …
    state: str | None = None
    branch: int | None = None
    details: dict = Field(default_factory=dict)


class Execution(Leased):
    """A workflow execution, pinned to the workflow version it started on.

    The record is the execution's whole state: every transition is one
    conditional write of it (`store/leases.py`), so any worker continues
    where a dead one stopped. History events wait in `history_tail` until a
    page of them is sealed into its own object.
    """

    id: str
    workflow_id: str
    workflow_name: str
    workflow_version: int
    status: ExecutionStatus = ExecutionStatus.running
    input: object | None = None
    output: object | None = None
    error: str | None = None
    cause: str | None = None
    started_at: datetime = Field(default_factory=now)
    stopped_at: datetime | None = None
    deadline: float | None = None  # Unix seconds: the definition's TimeoutSeconds
    due: float = 0.0  # Unix seconds: when a runner should next look (a Wait's end)
    marker: str | None = None  # its queue marker's key while running
    branches: dict[int, Branch] = Field(default_factory=dict)
    next_branch: int = 1
    history_tail: list[HistoryEvent] = Field(default_factory=list)
    history_pages: int = 0  # sealed pages before the tail
    # The last pages' own tokens, oldest first: page n's key carries the token the
    # record names (store/workflows.py). Pages before these (sealed by an older Nimbus)
    # have none.
    history_page_tokens: list[str] = Field(default_factory=list)
    history_count: int = 0

    @property
    def final(self) -> bool:
        return self.status != ExecutionStatus.running


# -- the build cache ---------------------------------------------------------


class CachedBuild(BaseModel):
    """A finished build, found again by what it was made from (compiler's build cache)."""

    artifact_key: str
    artifact_sha256: str
    artifact_kind: str
    runtime_version: str
    size: int
    function_id: str  # the build that made it (for the log)
    version: int
    created_at: datetime = Field(default_factory=now)
    used_at: float = Field(default_factory=time.time)  # Unix seconds: made or last reused

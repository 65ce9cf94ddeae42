"""Request and response bodies of the REST API (pydantic models at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from compiler import RUNTIMES, file_names_problem, requirement_problem
from store.alerts import AlertEvent
from store.records import (
    NAME_RE,
    BuildStatus,
    FunctionStatus,
    InvocationStatus,
    KeyScope,
    Trigger,
)

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*\Z"
MAX_CONCURRENCY = 10_000  # a function's max_concurrency (its slots are bytes of a lock file)


def dns_label(value: str) -> str:
    """A function's or workflow's name: unique, immutable, never a valid id."""
    if not NAME_RE.match(value):
        raise ValueError("must be a DNS label: 1-63 of a-z, 0-9 and '-', not at the ends")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Config(_Body):
    """Fields that make a new version when they change."""

    handler: str | None = Field(
        None,
        max_length=256,
        description="module.function, e.g. main.handler (GET /api/v1/runtimes has each default)",
    )
    code: str | None = Field(
        None,
        description="one source file, named by the handler: main.handler stores main.<ext> "
        "(default handler.<ext>)",
    )
    files: dict[str, str] | None = Field(None, description="source files: path → text")
    artifact_base64: str | None = Field(None, description="a wasm or native binary, base64")
    requirements: list[str] | None = Field(
        None,
        max_length=200,
        description="Python: PEP 508 requirements of packages from the index, e.g. "
        "'requests>=2' (one that is not, or a URL, is a 422)",
    )
    memory_mb: int | None = None
    timeout_sec: float | None = Field(None, gt=0)
    env_vars: dict[str, str] | None = None
    form: Literal["handler", "program"] | None = None
    target: Literal["wasm", "native"] | None = None
    reuse: bool | None = Field(
        None,
        description="keep warm instances between calls of this version on a worker, as "
        "Lambda reuses an environment: globals survive; never across versions or functions",
    )

    @field_validator("env_vars")
    @classmethod
    def _env_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        import re

        for key, text in (value or {}).items():
            if not re.match(_ENV_NAME, key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            # NOTE: an environment holds C strings: a native function's container agent
            # refused the NUL after its container had started (leaked, one per call, 500)
            if "\0" in text:
                raise ValueError(f"the value of {key} holds a NUL character")
        return value

    @field_validator("requirements")
    @classmethod
    def _requirements(cls, value: list[str] | None) -> list[str] | None:
        for text in value or []:
            if problem := requirement_problem(text):
                raise ValueError(problem)  # at once, not as a failed build
        return value

    @field_validator("files")
    @classmethod
    def _file_paths(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not value:
            raise ValueError("files must not be empty")
        if value and (problem := file_names_problem(list(value))):
            raise ValueError(problem)
        return value


class _Meta(_Body):
    tags: list[str] | None = Field(None, max_length=50)
    description: str | None = Field(None, max_length=1024)
    webhook: bool | None = None
    max_concurrency: int | None = Field(
        None,
        ge=0,
        le=MAX_CONCURRENCY,
        description="at most this many invocations at once per server, as Lambda's reserved "
        "concurrency: beyond it a call is 429 and an async invocation waits in the queue "
        "(0 throttles every call); an update with null removes the cap",
    )
    async_retries: int | None = Field(
        None,
        ge=0,
        le=2,
        description="an async invocation that fails on its own terms (an error, a timeout, "
        "memory) runs again this many times, 1 then 2 minutes later, as Lambda's "
        "MaximumRetryAttempts (default 0: its failure is final)",
    )
    async_on_failure: str | None = Field(
        None,
        max_length=63,
        description="a function's name: an async invocation that ends failed (after its "
        "async_retries) is sent to it as Lambda's on-failure destination record; an update "
        "with null removes it",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        for tag in value or []:
            if not tag or len(tag) > 64 or "," in tag:
                raise ValueError(f"{tag!r} is not a valid tag (1-64 characters, no commas)")
        return value


def _runtime_choices(schema: dict) -> None:
    # Read when the OpenAPI document is generated, so a registered runtime shows.
    schema["enum"] = [n for r in RUNTIMES for n in (r.name, *r.aliases)]


class FunctionCreate(_Config, _Meta):
    name: str
    runtime: str = Field(
        description="a runtime's name or alias (GET /api/v1/runtimes)",
        json_schema_extra=_runtime_choices,
    )

    _name = field_validator("name")(classmethod(lambda cls, value: dns_label(value)))

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        runtime = RUNTIMES.canonical(value)
        if runtime is None:
            raise ValueError(f"unknown runtime {value!r}; use one of {', '.join(RUNTIMES.names())}")
        return runtime


class FunctionUpdate(_Config, _Meta):
    name: str | None = None
    runtime: str | None = None
    status: Literal["active", "offline"] | None = None


class BulkDelete(_Body):
    ids: list[str] = Field(min_length=1, max_length=100)


class BulkUpdate(_Body):
    ids: list[str] = Field(min_length=1, max_length=100)
    status: Literal["active", "offline"] | None = None
    tags: list[str] | None = None


class BuildSummaryView(BaseModel):
    version: int
    status: BuildStatus
    error: str | None = None


class FunctionView(BaseModel):
    id: str
    name: str
    runtime: str
    runtime_version: str | None
    status: FunctionStatus
    active_version: int | None
    latest_version: int
    latest_build: BuildSummaryView | None
    code_size: int
    code_size_limit: int
    webhook_url: str | None
    handler: str | None = Field(
        None, description="the latest version's module.function (null: found in the source)"
    )
    memory_mb: int
    timeout_sec: float
    reuse: bool = Field(description="warm instances serve further calls of the version")
    max_concurrency: int | None = Field(
        None, description="invocations at once per server; null: no cap of its own"
    )
    async_retries: int = Field(0, description="runs again of a failed async invocation")
    async_on_failure: str | None = Field(
        None, description="where a failed async invocation is sent (a function's name)"
    )
    env_vars: dict[str, str] = Field(description="values masked")
    tags: list[str]
    description: str
    created_at: datetime
    updated_at: datetime


class FunctionList(BaseModel):
    functions: list[FunctionView]
    total: int
    limit: int
    offset: int


class BulkFailure(BaseModel):
    id: str
    error: dict


class BulkResult(BaseModel):
    success: list[str]
    failed: list[BulkFailure]


class BuildErrorView(BaseModel):
    file: str = Field(description="the function's own file, as it was uploaded")
    line: int
    column: int | None = None
    message: str


class BuildView(BaseModel):
    function_id: str
    version: int
    status: BuildStatus
    error: str | None
    errors: list[BuildErrorView] = Field(
        default_factory=list,
        description="what `error` locates in the source, parsed from the compiler's output",
    )
    attempts: int
    runtime_version: str | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    log: str


class RuntimeView(BaseModel):
    """One entry of the runtime registry, as clients (CLI, console) read it."""

    name: str
    aliases: list[str]
    kind: Literal["source", "binary"] = Field(
        description="source: `code` or `files`; binary: an uploaded artifact"
    )
    extension: str | None = Field(description="of its source files or artifact, without a dot")
    extensions: list[str] = Field(description="every file ending that means this runtime")
    project_files: list[str] = Field(
        default_factory=list,
        description="files that make a folder a project of this runtime (package.json, go.mod)",
    )
    default_handler: str | None
    forms: list[Literal["handler", "program"]]
    program_marker: str | None = Field(description="what in the source makes it a program")
    memory_floor_mb: int = Field(description="the least memory_mb a function may have")
    native_allowed: bool = Field(description='`"target": "native"` is accepted')
    reuse_allowed: bool = Field(description="a function may opt in to warm instance reuse")
    code_size_limit: int = Field(description="bytes of decoded source or artifact")
    description: str


class RuntimeList(BaseModel):
    runtimes: list[RuntimeView]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: object | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class InvocationFunction(BaseModel):
    id: str
    name: str


class InvocationView(BaseModel):
    id: str
    function: InvocationFunction
    version: int
    trigger: Trigger
    status: str
    attempts: int
    retries: int = Field(0, description="runs again after the function's own failure")
    result: object | None = None
    error: dict | None = None
    duration_ms: float | None = None
    schedule_id: str | None = Field(None, description="a schedule's tick: its schedule")
    scheduled_at: datetime | None = Field(None, description="a tick's instant")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def of(cls, record) -> InvocationView:
        return cls(
            id=record.id,
            function=InvocationFunction(id=record.function_id, name=record.function_name),
            version=record.version,
            trigger=record.trigger,
            status=record.status,
            attempts=record.attempts,
            retries=record.retries,
            result=record.result,
            error=record.error,
            # as the invocation list and the headers give it (was 0.5730089997086907)
            duration_ms=None if record.duration_ms is None else round(record.duration_ms, 3),
            schedule_id=record.schedule_id,
            scheduled_at=record.scheduled_at,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
        )


class InvocationAccepted(BaseModel):
    """202 of an async invoke (or a webhook called with `X-Nimbus-Invocation-Type: Event`)."""

    invocation_id: str = Field(description="poll GET /api/v1/invocations/{invocation_id}")
    status: InvocationStatus


class CodeFiles(BaseModel):
    """`GET …/code` of a version sent as `files` (or Python/JavaScript `code`)."""

    version: int
    runtime: str
    handler: str | None
    files: dict[str, str] = Field(description="path → text")


class HealthView(BaseModel):
    status: Literal["ok"]


class ReadyView(BaseModel):
    status: Literal["ready", "degraded", "unavailable"]
    store: Literal["unreachable", "no_conditional_writes"] | None = Field(
        None, description="why the server is not ready (503)"
    )
    schedules: str | None = Field(None, description="degraded: schedules refused, and why")


class InvocationListItem(BaseModel):
    id: str
    version: int
    trigger: Trigger
    status: InvocationStatus
    duration_ms: float | None = Field(description="the guest's run time; null until it ran")
    error_code: str | None = Field(None, description="function_error, timeout, …")
    cold_start: bool | None = Field(
        None, description="it started a new instance (X-Nimbus-Cold-Start); null until it ran"
    )
    created_at: datetime = Field(description="when it started (sync) or was accepted (async)")


class InvocationList(BaseModel):
    invocations: list[InvocationListItem] = Field(description="newest first")
    searched_since: datetime | None = Field(
        None,
        description="set when the search stopped at its bound (1,000 log batches) before "
        "finding `limit`: every invocation made since then was searched, older ones were not",
    )


# -- logs, stats, quota ----------------------------------------------------------


class LogEntry(BaseModel):
    invocation_id: str
    ts: str = Field(description="RFC 3339 UTC, microseconds")
    stream: Literal["stdout", "stderr", "platform"]
    line: str


class LogList(BaseModel):
    entries: list[LogEntry] = Field(description="newest first")


class DurationSummary(BaseModel):
    min: float | None
    avg: float | None
    max: float | None


class InvocationSummary(BaseModel):
    total_invocations: int
    succeeded: int
    failed: int
    timed_out: int
    throttled: int = Field(0, description="refused with 429 before running; not in the total")
    success_rate: float | None = Field(description="succeeded / total, 0–1; null before any")
    cold_starts: int
    duration_ms: DurationSummary = Field(description="the guest's run time")


class FunctionCounts(BaseModel):
    total: int
    by_status: dict[str, int]
    by_runtime: dict[str, int]


class StatsView(InvocationSummary):
    by_runtime: dict[str, InvocationSummary]
    by_error_type: dict[str, int] = Field(
        description="platform error code: function_error, timeout, memory_limit_exceeded, …"
    )
    by_function_error_type: dict[str, int] = Field(
        description="a function error's own type: ExitError, ValueError, …"
    )
    by_trigger: dict[Trigger, int] = Field(description="api, webhook, async, schedule, workflow")
    functions: FunctionCounts
    generated_at: datetime


class MemoryLimits(BaseModel):
    min: int
    max: int
    default: int
    min_by_runtime: dict[str, int]


class TimeoutLimits(BaseModel):
    default: float
    max: float


class CodeSizeLimits(BaseModel):
    source: int
    binary: int


class QuotaLimits(BaseModel):
    max_functions: int = Field(description="creates beyond it: 409 quota_exceeded")
    memory_mb: MemoryLimits
    timeout_sec: TimeoutLimits
    code_size_bytes: CodeSizeLimits
    event_size_bytes: int
    max_concurrent_per_worker: int
    invoke_queue_per_worker: int
    workers: int
    max_concurrent: int = Field(description="per worker × workers, on this server")
    log_retention_hours: float


class ConcurrencyUsage(BaseModel):
    worker: int = Field(description="running in the worker that answered")
    server: int = Field(description="running in all workers of this server (≤ 0.5 s old)")


class QuotaUsage(BaseModel):
    functions: int
    functions_remaining: int
    stored_bytes: int = Field(description="code of each function's latest version (estimate)")
    concurrent_invocations: ConcurrencyUsage


class QuotaView(BaseModel):
    limits: QuotaLimits
    usage: QuotaUsage


# -- schedules --------------------------------------------------------------------


class _ScheduleFields(_Body):
    event: object = Field(None, description="the JSON event each tick invokes with; default {}")
    timezone: str | None = Field(None, max_length=64, description="IANA name; default UTC")
    enabled: bool | None = None
    qualifier: str | None = Field(
        None, max_length=64, description="a version number or an alias; default: active version"
    )
    description: str | None = Field(None, max_length=512)

    @field_validator("qualifier", mode="before")
    @classmethod
    def _qualifier(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ScheduleCreate(_ScheduleFields):
    expression: str = Field(
        min_length=1,
        max_length=256,
        description="cron (5 fields, or 6 with seconds first), EventBridge's "
        "cron(minute hour day month weekday year), @hourly-style names, "
        "or rate(N second|minute|hour|day[s])",
    )


class ScheduleUpdate(_ScheduleFields):
    expression: str | None = Field(None, min_length=1, max_length=256)


class ScheduleView(BaseModel):
    id: str
    function_id: str | None = Field(description="a function's schedule: each tick is an async "
                                    "invocation")  # fmt: skip
    workflow_id: str | None = Field(None, description="a workflow's: each tick is an execution")
    function_name: str | None = Field(None, description="the function's name (a function's)")
    workflow_name: str | None = Field(None, description="the workflow's name (a workflow's)")
    expression: str
    summary: str = Field(description="the expression in words, in its time zone")
    timezone: str
    qualifier: str | None
    event: object
    enabled: bool
    description: str
    next_run_at: datetime | None = Field(description="null while disabled")
    last_run_at: datetime | None = Field(description="the scheduled time of the last tick fired")
    last_invocation_id: str | None = Field(description="or the last execution's id")
    created_at: datetime
    updated_at: datetime


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]
    total: int


class SchedulePage(BaseModel):
    """`GET /api/v1/schedules`: every function's and workflow's schedules, oldest first."""

    schedules: list[ScheduleView]
    total: int
    limit: int
    offset: int


# -- API keys -------------------------------------------------------------------------------


class KeyCreate(_Body):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[KeyScope] = Field(min_length=1)


class KeyView(BaseModel):
    id: str
    name: str
    scopes: list[KeyScope]
    prefix: str  # the key's first characters, to recognise it
    created_at: datetime
    last_used_at: datetime | None = None


class KeyCreated(KeyView):
    key: str  # shown once, here; only its SHA-256 is stored


class KeyList(BaseModel):
    keys: list[KeyView]
    total: int


# -- windowed stats (GET /api/v1/functions/{id}/stats, GET /api/v1/stats?since=) --------


class LatencyView(BaseModel):
    """Guest run time in ms; quantiles are the upper bound of their histogram bucket
    (buckets 10 % wide, mergeable across workers)."""

    min: float | None
    avg: float | None
    max: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class WindowView(BaseModel):
    invocations: int = Field(description="calls that ran (throttled ones did not)")
    succeeded: int
    failed: int = Field(description="function errors, memory kills, results too large")
    timed_out: int
    throttled: int = Field(description="refused with 429 before running; not in invocations")
    errors: int = Field(description="failed + timed_out")
    error_rate: float | None = Field(description="errors / invocations, 0–1; null before any")
    cold_starts: int
    error_codes: dict[str, int] = Field(description="platform error code → count")
    duration_ms: LatencyView


class WindowPointView(WindowView):
    start: datetime = Field(description="the step's start; the step covers [start, start+step)")
    by_version: dict[str, WindowView] = Field(
        default_factory=dict, description="per version (function stats only)"
    )


class WindowStatsView(BaseModel):
    function: InvocationFunction | None = Field(description="null for the platform-wide view")
    version: int | None = Field(description="the ?version= filter, if any")
    since: datetime = Field(description="the first step's start (since, aligned down to step)")
    until: datetime
    step_sec: int
    resolution_sec: int = Field(description="the finest windows read: 10, or 60 (roll-ups)")
    staleness_sec: float = Field(description="other workers' outcomes are at most this late")
    totals: WindowView
    by_version: dict[str, WindowView] = Field(default_factory=dict)
    by_function: dict[str, WindowView] = Field(
        default_factory=dict, description="platform-wide view only: function name → totals"
    )
    series: list[WindowPointView] = Field(description="one point per step, oldest first")


# -- workflows ----------------------------------------------------------------------


_JSON_TYPES = {list: "an array", bool: "a boolean", int: "a number", float: "a number"}


def _asl_definition(value):
    # One message for a value of neither type (pydantic gives one per member of the union,
    # named 'definition.dict[any,any]' and 'definition.str').
    if not isinstance(value, dict | str):
        kind = _JSON_TYPES.get(type(value), "null")
        raise ValueError(
            f"must be the Amazon States Language object (or its JSON as a string), not {kind}"
        )
    return value


class WorkflowCreate(_Body):
    name: str
    definition: dict | str = Field(description="Amazon States Language: an object or its JSON")
    description: str | None = Field(None, max_length=1024)

    _name = field_validator("name")(classmethod(lambda cls, value: dns_label(value)))
    _definition = field_validator("definition", mode="before")(
        classmethod(lambda cls, value: _asl_definition(value))
    )


class WorkflowUpdate(_Body):
    definition: dict | str | None = Field(None, description="a new definition: a new version")
    description: str | None = Field(None, max_length=1024)

    _definition = field_validator("definition", mode="before")(
        classmethod(lambda cls, value: value if value is None else _asl_definition(value))
    )


class WorkflowView(BaseModel):
    id: str
    name: str
    description: str
    version: int = Field(description="the latest version: new executions start on it")
    definition: dict
    created_at: datetime
    updated_at: datetime


class WorkflowList(BaseModel):
    workflows: list[WorkflowView]
    total: int
    limit: int
    offset: int


class WorkflowRef(BaseModel):
    id: str
    name: str


class ExecutionView(BaseModel):
    id: str
    workflow: WorkflowRef
    workflow_version: int
    status: Literal["running", "succeeded", "failed", "timed_out", "aborted"]
    input: object | None = None
    output: object | None = None
    error: str | None = None
    cause: str | None = None
    started_at: datetime
    stopped_at: datetime | None = None


class ExecutionList(BaseModel):
    executions: list[ExecutionView]
    total: int
    limit: int
    offset: int


class ExecutionStop(_Body):
    error: str | None = Field(None, max_length=256)
    cause: str | None = Field(None, max_length=32768)


class HistoryEventView(BaseModel):
    id: int
    timestamp: datetime
    type: str = Field(description="Step Functions' event names: TaskStateEntered, TaskSucceeded, …")
    state: str | None = None
    branch: int | None = Field(None, description="the Parallel branch or Map item (0: the top)")
    details: dict


class HistoryView(BaseModel):
    events: list[HistoryEventView]


# -- versions, rollback, history -------------------------------------------------------


class VersionView(BaseModel):
    version: int
    status: BuildStatus
    error: str | None = None
    created_at: datetime
    code_size: int
    sha256: str = Field(description="SHA-256 of the version's source or uploaded artifact")
    artifact_sha256: str | None = Field(None, description="of the built artifact, once ready")
    runtime_version: str | None
    handler: str | None = Field(None, description="module.function (null: found in the source)")
    memory_mb: int
    timeout_sec: float
    env_vars: dict[str, str] = Field(description="values masked")
    description: str
    active: bool = Field(description="the version the function serves without a qualifier")
    aliases: list[str] = Field(description="aliases that point or route to it")


class VersionList(BaseModel):
    versions: list[VersionView] = Field(description="newest first")
    total: int
    limit: int
    offset: int


class RollbackBody(_Body):
    reason: str | None = Field(None, max_length=1024)


class FunctionHistoryEntry(BaseModel):
    at: datetime
    action: str = Field(
        description="deploy (a new version serves), rollback, "
        "alias_created/updated/deleted, canary_*"
    )
    from_version: int | None
    to_version: int | None
    alias: str | None
    actor: str = Field(description="key:<id>, admin key, or canary")
    reason: str


class FunctionHistory(BaseModel):
    entries: list[FunctionHistoryEntry] = Field(description="newest first")
    total: int
    limit: int
    offset: int


# -- aliases -------------------------------------------------------------------------


class AliasBody(_Body):
    name: str | None = Field(None, description="DNS label, not a number, not `latest`")
    version: int = Field(ge=1)
    routing: dict[str, float] | None = Field(
        None, description="other version → % of calls; the rest goes to `version`"
    )
    description: str | None = Field(None, max_length=1024)
    webhook: bool | None = Field(None, description="give the alias its own public URL (or not)")

    @field_validator("name")
    @classmethod
    def _alias_name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.isdigit() or value == "latest":
            raise ValueError("an alias name is not a number and not 'latest'")
        return dns_label(value)


class AliasView(BaseModel):
    name: str
    version: int
    routing: dict[str, float] = Field(description="other version → % of calls")
    description: str
    webhook_url: str | None = Field(None, description="the alias's own public URL, if on")
    canary: dict | None = Field(
        None, description="{version, weight, step, status, reason, started_at, history, …}"
    )
    created_at: datetime
    updated_at: datetime


class AliasList(BaseModel):
    aliases: list[AliasView]


class CanaryBody(_Body):
    version: int = Field(ge=1, description="the new version the alias moves to")
    steps: list[float] = Field(
        default_factory=lambda: [10, 25, 50, 100],
        min_length=1,
        max_length=20,
        description="% of the alias's calls on the new version, step by step",
    )
    interval_sec: float = Field(60, ge=5, le=86400, description="time on each step")
    max_error_rate: float = Field(0.05, ge=0, le=1, description="errors / invocations, 0–1")
    min_invocations: int = Field(10, ge=1, description="needed on a step before deciding")
    max_p99_ms: float | None = Field(None, gt=0)
    on_idle: Literal["hold", "promote", "rollback"] = Field(
        "hold",
        description="after idle_intervals without min_invocations calls on a step: keep "
        "holding (the reason says so), promote by time, or roll back",
    )
    idle_intervals: int = Field(3, ge=1, le=10000, description="intervals before on_idle acts")

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in value) or value != sorted(set(value)):
            raise ValueError("steps are increasing percentages above 0, at most 100")
        return value if value[-1] == 100 else [*value, 100.0]


# -- alert rules -----------------------------------------------------------------------


class AlertNotifyBody(_Body):
    webhook_url: str = Field(min_length=1, max_length=2048, description="http(s) only; public "
                             "addresses unless ALERT_WEBHOOK_ALLOW_PRIVATE")  # fmt: skip
    secret: str | None = Field(None, min_length=12, max_length=256, description="the HMAC-SHA256 "
                               "key of X-Nimbus-Signature; generated (and shown once) if "
                               "omitted")  # fmt: skip


def _window_seconds(value: int | None) -> int | None:
    if value is not None and value % 10:
        raise ValueError("a multiple of 10 seconds (the stats' slot)")
    return value


class _AlertFields(_Body):
    description: str | None = Field(None, max_length=1024)
    function: str | None = Field(None, description="function id or name; omitted: every "
                                 "function of the platform")  # fmt: skip
    op: str | None = Field(None, description="> >= < <= (or gt, gte, lt, lte)")
    threshold: float | None = Field(None, allow_inf_nan=False)
    window_sec: int | None = Field(None, ge=10, le=86400, description="a multiple of 10")
    for_sec: int | None = Field(None, ge=0, le=86400, description="breaching this long before "
                                "firing (pending meanwhile); default 0")  # fmt: skip
    repeat_sec: int | None = Field(None, ge=60, le=7 * 86400, description="while firing, "
                                   "notify again this often; null: once per change")  # fmt: skip
    enabled: bool | None = None

    _window = field_validator("window_sec")(_window_seconds)


class AlertCreate(_AlertFields):
    name: str = Field(min_length=1, max_length=100)
    metric: Literal["error_rate", "p99_ms", "throttles", "cold_starts", "invocations"]
    op: str
    threshold: float = Field(allow_inf_nan=False)
    window_sec: int = Field(ge=10, le=86400, description="a multiple of 10")
    notify: AlertNotifyBody


class AlertUpdate(_AlertFields):
    name: str | None = Field(None, min_length=1, max_length=100)
    metric: Literal["error_rate", "p99_ms", "throttles", "cold_starts", "invocations"] | None = None
    notify: AlertNotifyBody | None = None


class AlertNotifyView(BaseModel):
    webhook_url: str = Field(description="a password in the URL is masked")
    secret: str | None = Field(None, description="only in the answer that set it")


class AlertView(BaseModel):
    id: str
    name: str
    description: str
    function: InvocationFunction | None = Field(description="null: every function")
    metric: str
    op: str
    threshold: float
    window_sec: int
    for_sec: int
    repeat_sec: int | None
    notify: AlertNotifyView
    enabled: bool
    state: Literal["ok", "pending", "firing"]
    since: datetime = Field(description="when the state began (a window's end)")
    value: float | None = Field(description="the metric over the last window evaluated; null "
                                "for a rate or percentile without invocations")  # fmt: skip
    evaluated_until: datetime | None = Field(description="the end of the last window evaluated")
    evaluated_at: datetime | None
    evaluate_every_sec: int
    pending_deliveries: int
    created_at: datetime
    updated_at: datetime


class AlertList(BaseModel):
    alerts: list[AlertView]
    total: int


class AlertTestResult(BaseModel):
    delivery_id: str
    delivered: bool = Field(description="the receiver answered 2xx")
    status_code: int | None = Field(description="null: no answer (refused, unreachable, timeout)")
    error: str | None
    duration_ms: float | None


class AlertHistory(BaseModel):
    events: list[AlertEvent] = Field(
        description="newest first: state changes, delivery "
        "attempts (outcome delivered|retrying|failed|dropped), edits"
    )
    total: int
    limit: int
    offset: int

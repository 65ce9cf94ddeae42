"""The OpenAPI 3.1 document, generated from the same pydantic models the API uses."""

from __future__ import annotations

from pydantic.json_schema import models_json_schema

from .. import schemas


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict:
    return {"application/json": {"schema": _ref(name)}}


_ERRORS = {
    str(code): {"description": text, "content": _json("ErrorResponse")}
    for code, text in (
        (400, "malformed JSON"),
        (401, "missing or wrong API key"),
        (404, "unknown function"),
        (409, "conflict"),
        (413, "too large"),
        (415, "unsupported media type"),
        (422, "validation error naming the fields"),
    )
}


def _op(summary: str, ok: tuple[str, str | None], *, body: str | None = None,
        params: list[dict] | None = None) -> dict:  # fmt: skip
    status, model = ok
    response = {"description": summary}
    if model:
        response["content"] = _json(model)
    op = {"summary": summary, "responses": {status: response, **_ERRORS}}
    if body:
        op["requestBody"] = {"required": True, "content": _json(body)}
    if params:
        op["parameters"] = params
    return op


def _query(name: str, kind: str = "string") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": {"type": kind}}


_REF = {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "function id or name"}  # fmt: skip


_SCHEDULE_ID = {"name": "schedule_id", "in": "path", "required": True,
                "schema": {"type": "string"}, "description": "sch_…"}  # fmt: skip


_METRICS = {"get": {"summary": "Prometheus metrics of every worker", "security": [],
                    "responses": {"200": {"description": "Prometheus text format",
                                          "content": {"text/plain": {"schema": {
                                              "type": "string"}}}}}}}  # fmt: skip


_WINDOW = [
    {**_query("since"), "description": "RFC 3339, Unix seconds or an age (15m); default 1h"},
    {**_query("until"), "description": "RFC 3339, Unix seconds or an age; default now"},
    {
        **_query("step"),
        "description": "seconds or 10s/5m/1h (a multiple of 10 s); default ~60 points",
    },
]


def _stats_op() -> dict:
    op = _op(
        "invocation totals over every worker (success rate, durations, by runtime and "
        "error type; function counts); with since/until/step, the platform's windowed "
        "stats by function instead",
        ("200", "StatsView"),
        params=_WINDOW,
    )
    op["responses"]["200"]["content"]["application/json"]["schema"] = {
        "oneOf": [_ref("StatsView"), _ref("WindowStatsView")]
    }
    return op


_REQUEST_BODIES = ("FunctionCreate", "FunctionUpdate", "BulkDelete", "BulkUpdate",
                   "ScheduleCreate", "ScheduleUpdate",
                   "WorkflowCreate", "WorkflowUpdate", "ExecutionStop")  # fmt: skip


def document(version: str) -> dict:
    models = [
        schemas.FunctionCreate, schemas.FunctionUpdate, schemas.FunctionView,
        schemas.FunctionList, schemas.BulkDelete, schemas.BulkUpdate, schemas.BulkResult,
        schemas.BuildView, schemas.ErrorResponse,
        schemas.LogList, schemas.StatsView, schemas.QuotaView, schemas.RuntimeList,
        schemas.ScheduleCreate, schemas.ScheduleUpdate, schemas.ScheduleView,
        schemas.ScheduleList,
        schemas.WindowStatsView,
        schemas.WorkflowCreate, schemas.WorkflowUpdate, schemas.WorkflowView,
        schemas.WorkflowList, schemas.ExecutionView, schemas.ExecutionList,
        schemas.ExecutionStop, schemas.HistoryView,
    ]  # fmt: skip
    _, defs = models_json_schema(
        [(m, "validation" if m.__name__ in _REQUEST_BODIES else "serialization") for m in models],
        ref_template="#/components/schemas/{model}",
    )  # fmt: skip
    fn = "/api/v1/functions/{ref}"
    return {
        "openapi": "3.1.0",
        "info": {"title": "Nimbus", "version": version},
        "security": [{"bearer": []}],
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/api/v1/functions": {
                "get": _op("list functions", ("200", "FunctionList"), params=[
                    _query("name"), _query("tags"), _query("runtime"), _query("status"),
                    _query("limit", "integer"), _query("offset", "integer")]),
                "post": _op("create a function", ("201", "FunctionView"), body="FunctionCreate",
                            params=[_query("wait", "boolean")]),
            },
            fn: {
                "parameters": [_REF],
                "get": _op("get a function", ("200", "FunctionView")),
                "put": _op("update a function (code or configuration → new version)",
                           ("200", "FunctionView"), body="FunctionUpdate",
                           params=[_query("wait", "boolean")]),
                "delete": _op("delete a function", ("204", None)),
            },
            fn + "/code": {"parameters": [_REF], "get": _op(
                "source or artifact of a version", ("200", None),
                params=[_query("version", "integer")])},
            fn + "/build": {"parameters": [_REF], "get": _op(
                "build status and log", ("200", "BuildView"),
                params=[_query("version", "integer")])},
            fn + "/logs": {"parameters": [_REF], "get": _op(
                "invocation logs, newest first (this worker's flushed first; others ≤ 0.5 s)",
                ("200", "LogList"), params=[
                    {**_query("since"), "description": "RFC 3339 or Unix seconds"},
                    {**_query("limit", "integer"), "description": "1–1000, default 100"},
                    _query("invocation_id")])},
            fn + "/schedules": {
                "parameters": [_REF],
                "get": _op("list a function's schedules", ("200", "ScheduleList")),
                "post": _op("create a schedule: each tick is one async invocation, fired once "
                            "across all replicas", ("201", "ScheduleView"), body="ScheduleCreate"),
            },
            fn + "/schedules/{schedule_id}": {
                "parameters": [_REF, _SCHEDULE_ID],
                "get": _op("get a schedule", ("200", "ScheduleView")),
                "put": _op("update a schedule", ("200", "ScheduleView"), body="ScheduleUpdate"),
                "delete": _op("delete a schedule", ("204", None)),
            },
            fn + "/stats": {"parameters": [_REF], "get": _op(
                "windowed stats per version: counts by outcome and p50/p95/p99 per step "
                "(this worker's flushed first; others ≤ 0.5 s)",
                ("200", "WindowStatsView"), params=[*_WINDOW, _query("version", "integer")])},
            "/api/v1/stats": {"get": _stats_op()},
            "/api/v1/quota": {"get": _op(
                "configured limits and current usage", ("200", "QuotaView"))},
            "/api/v1/runtimes": {"get": _op(
                "the runtime registry: names, aliases, extensions, handler defaults, limits",
                ("200", "RuntimeList"))},
            "/api/v1/runtimes/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"type": "string"}, "description": "name or alias"}],
                "get": _op("one runtime", ("200", "RuntimeView"))},
            "/metrics": _METRICS,
            "/api/metrics": _METRICS,
            "/api/v1/functions/bulk-delete": {
                "post": _op("delete many functions", ("200", "BulkResult"), body="BulkDelete")},
            "/api/v1/functions/bulk-update": {
                "post": _op("update many functions", ("200", "BulkResult"), body="BulkUpdate")},
            **_workflow_paths(),
            "/health": {"get": {"summary": "liveness", "security": [],
                                "responses": {"200": {"description": "alive"}}}},
            "/ready": {"get": {"summary": "readiness (the store answers)", "security": [],
                               "responses": {"200": {"description": "ready"},
                                             "503": {"description": "store unavailable"}}}},
        },
    }  # fmt: skip


def _workflow_paths() -> dict:
    wf, ex = "/api/v1/workflows", "/api/v1/executions/{execution_id}"
    ref = {**_REF, "description": "workflow id or name"}
    ex_id = {"name": "execution_id", "in": "path", "required": True, "schema": {"type": "string"}}
    page = [_query("limit", "integer"), _query("offset", "integer")]
    return {
        wf: {
            "get": _op("list workflows", ("200", "WorkflowList"), params=[_query("name"), *page]),
            "post": _op("create a workflow (Amazon States Language)", ("201", "WorkflowView"),
                        body="WorkflowCreate"),
        },
        wf + "/{ref}": {
            "parameters": [ref],
            "get": _op("get a workflow and its latest definition", ("200", "WorkflowView")),
            "put": _op("edit a workflow (a new definition → a new version)",
                       ("200", "WorkflowView"), body="WorkflowUpdate"),
            "delete": _op("delete a workflow (its executions stay readable)", ("204", None)),
        },
        wf + "/{ref}/executions": {
            "parameters": [ref],
            "post": {**_op("start an execution: the body is its input", ("202", "ExecutionView")),
                     "requestBody": {"required": False, "content": {"application/json": {
                         "schema": {}}}}},
            "get": _op("a workflow's executions, newest first", ("200", "ExecutionList"),
                       params=[_query("status"), *page]),
        },
        ex: {"parameters": [ex_id], "get": _op("an execution", ("200", "ExecutionView"))},
        ex + "/history": {"parameters": [ex_id], "get": _op(
            "an execution's events (Step Functions names)", ("200", "HistoryView"))},
        ex + "/stop": {"parameters": [ex_id], "post": _op(
            "abort a running execution", ("200", "ExecutionView"), body="ExecutionStop")},
    }  # fmt: skip

"""The OpenAPI 3.1 document, generated from the app's routes and the pydantic models it uses.

`document(version, routes)` takes every (URI template, resource) the router
holds: methods come from each resource's responders, path parameters from
the template, `security: []` from `@public`; summaries, parameters and bodies
from the operation tables below. Every operation lists the error responses
with the error schema. tests/gateway/test_openapi.py fails when a route or a
method has no operation here, or an operation no route.
"""

from __future__ import annotations

import re

import falcon
from pydantic.json_schema import models_json_schema

from .. import schemas
from .middleware import SANDBOX


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict:
    return {"application/json": {"schema": _ref(name)}}


_ERRORS = {
    str(code): {"description": text, "content": _json("ErrorResponse")}
    for code, text in (
        (400, "malformed JSON or a bad header"),
        (401, "missing or wrong API key"),
        (403, "the key lacks the scope this route needs"),
        (404, "unknown function, version, alias or route"),
        (409, "conflict: not ready, build failed, offline, in use, quota"),
        (413, "too large"),
        (415, "unsupported media type"),
        (422, "validation error naming the fields"),
        (429, "too many requests (see Retry-After)"),
        (503, "the store or an engine is unavailable"),
    )
}
_PUBLIC_ERRORS = {code: _ERRORS[code] for code in ("404", "413", "429", "503")}


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


_VERSION = {"name": "version", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1}}  # fmt: skip


_METRICS = {"get": {"summary": "Prometheus metrics of every worker (no key; with METRICS_TOKEN "
                               "set, `Authorization: Bearer <METRICS_TOKEN>`)", "security": [],
                    "responses": {"200": {"description": "Prometheus text format",
                                          "content": {"text/plain": {"schema": {
                                              "type": "string"}}}},
                                  "401": {"description": "METRICS_TOKEN is set and not given",
                                          "content": _json("ErrorResponse")}}}}  # fmt: skip


_HEALTH = {
    "get": {
        "summary": "liveness: the process answers",
        "security": [],
        "responses": {"200": {"description": "alive", "content": _json("HealthView")}},
    }
}


def _code_op() -> dict:
    default = "what the next update starts from (the latest; after a rollback, what serves)"
    version = {**_query("version", "integer"), "description": f"default: {default}"}
    op = _op("source or artifact of a version (X-Nimbus-Version names it)", ("200", None),
             params=[version])  # fmt: skip
    op["responses"]["200"]["content"] = {
        "application/json": {"schema": _ref("CodeFiles")},
        "application/wasm": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }
    return op


_WINDOW = [
    {
        **_query("since"),
        "description": "RFC 3339, Unix seconds or an age (15m); default 1h; the range spans "
        "at most STATS_RETENTION_DAYS + 1 days",
    },
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


_REQUEST_BODIES = ("FunctionCreate", "FunctionUpdate", "BulkDelete", "BulkUpdate", "KeyCreate",
                   "ScheduleCreate", "ScheduleUpdate",
                   "WorkflowCreate", "WorkflowUpdate", "ExecutionStop", "RollbackBody",
                   "AliasBody", "CanaryBody", "AlertCreate", "AlertUpdate")  # fmt: skip


def document(version: str, routes: list[tuple[str, object]] = ()) -> dict:
    """The document for the app whose router holds `routes` (see `app_routes`)."""
    doc = _operations(version)
    for template, resource in routes:
        item = doc["paths"].get(openapi_path(template))
        if item is None:
            continue  # undocumented: the route-coverage test names it
        names = re.findall(r"\{(\w+)(?::[^}]*)?\}", template)
        declared = {p["name"] for p in item.get("parameters", [])}
        item.setdefault("parameters", []).extend(
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in names
            if n not in declared
        )
        if not item["parameters"]:
            del item["parameters"]
        for method in responders(resource):
            if method not in item:  # an alias of a documented responder (PATCH = PUT)
                same = getattr(resource, f"on_{method}").__func__
                for other, op in list(item.items()):
                    if getattr(getattr(resource, f"on_{other}", None), "__func__", None) is same:
                        item[method] = {**op, "summary": f"{op['summary']} (as {other.upper()})"}
        if getattr(resource, "public", False):
            for method in responders(resource):
                op = item.get(method)
                if op is not None:
                    op["security"] = []
                    for code in ("401", "403"):
                        op["responses"].pop(code, None)
    return doc


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


def responders(resource: object) -> list[str]:
    """The HTTP methods a resource answers (its `on_<method>`s), lower-case."""
    return [m for m in HTTP_METHODS if callable(getattr(resource, f"on_{m}", None))]


def openapi_path(template: str) -> str:
    """Falcon's `/webhook/{key}/{path:path}` as OpenAPI's `/webhook/{key}/{path}`."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", template)


def app_routes(app: falcon.App) -> list[tuple[str, object]]:
    """Every (URI template, resource) the app's router holds."""
    found, nodes = [], list(app._router._roots)
    while nodes:
        node = nodes.pop()
        if node.resource is not None:
            found.append((node.uri_template, node.resource))
        nodes.extend(node.children)
    return sorted(found, key=lambda route: route[0])


def _operations(version: str) -> dict:
    models = [
        schemas.FunctionCreate, schemas.FunctionUpdate, schemas.FunctionView,
        schemas.FunctionList, schemas.BulkDelete, schemas.BulkUpdate, schemas.BulkResult,
        schemas.BuildView, schemas.ErrorResponse,
        schemas.LogList, schemas.StatsView, schemas.QuotaView, schemas.RuntimeList,
        schemas.ScheduleCreate, schemas.ScheduleUpdate, schemas.ScheduleView,
        schemas.ScheduleList, schemas.SchedulePage,
        schemas.WindowStatsView,
        schemas.WorkflowCreate, schemas.WorkflowUpdate, schemas.WorkflowView,
        schemas.WorkflowList, schemas.ExecutionView, schemas.ExecutionList,
        schemas.ExecutionStop, schemas.HistoryView,
        schemas.InvocationView, schemas.InvocationList, schemas.KeyCreate, schemas.KeyCreated,
        schemas.KeyList, schemas.RuntimeView,
        schemas.VersionView, schemas.VersionList, schemas.RollbackBody, schemas.FunctionHistory,
        schemas.AliasBody, schemas.AliasView, schemas.AliasList, schemas.CanaryBody,
        schemas.AlertCreate, schemas.AlertUpdate, schemas.AlertView, schemas.AlertList,
        schemas.AlertHistory, schemas.AlertTestResult,
        schemas.InvocationAccepted, schemas.CodeFiles, schemas.HealthView, schemas.ReadyView,
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
            fn + "/code": {"parameters": [_REF], "get": _code_op()},
            fn + "/build": {"parameters": [_REF], "get": _op(
                "build status and log", ("200", "BuildView"),
                params=[_query("version", "integer")])},
            fn + "/logs": {"parameters": [_REF], "get": _op(
                "invocation logs, newest first (this worker's flushed first; others ≤ 0.5 s)",
                ("200", "LogList"), params=[
                    {**_query("since"), "description": "RFC 3339, Unix seconds or an age (15m)"},
                    {**_query("limit", "integer"), "description": "1–1000, default 100"},
                    _query("invocation_id")])},
            "/api/v1/schedules": {
                "get": _op("list every function's and workflow's schedules, oldest first",
                           ("200", "SchedulePage"), params=[
                    {**_query("name"), "description": "a part of the function's or workflow's "
                     "name"},
                    {**_query("enabled", "boolean"), "description": "true or false"},
                    _query("limit", "integer"), _query("offset", "integer")]),
            },
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
            fn + "/versions": {"parameters": [_REF], "get": _op(
                "versions, newest first", ("200", "VersionList"),
                params=[_query("limit", "integer"), _query("offset", "integer")])},
            fn + "/versions/{version}": {"parameters": [_REF, _VERSION], "get": _op(
                "one version", ("200", "VersionView"))},
            fn + "/versions/{version}/rollback": {"parameters": [_REF, _VERSION], "post": _op(
                "serve this ready version at once (every worker within 1 s); 409 not_ready "
                "or build_failed", ("200", "FunctionView"), body="RollbackBody")},
            fn + "/aliases": {
                "parameters": [_REF],
                "get": _op("a function's aliases", ("200", "AliasList")),
                "post": _op("create an alias: a version, optional weights to others "
                            "(invoke with ?alias=NAME or name:alias; X-Nimbus-Routing-Key "
                            "sticks a caller to one version)", ("201", "AliasView"),
                            body="AliasBody"),
            },
            fn + "/aliases/{name}": {
                "parameters": [_REF, {"name": "name", "in": "path", "required": True,
                                      "schema": {"type": "string"}}],
                "get": _op("one alias", ("200", "AliasView")),
                "put": _op("repoint an alias or change its weights (every worker within 1 s)",
                           ("200", "AliasView"), body="AliasBody"),
                "delete": _op("delete an alias; 409 in_use while a schedule names it",
                              ("204", None)),
            },
            fn + "/aliases/{name}/canary": {
                "parameters": [_REF, {"name": "name", "in": "path", "required": True,
                                      "schema": {"type": "string"}}],
                "post": _op("start an automatic canary: the alias moves to the version step "
                            "by step, or rolls back by itself; 409 canary_running",
                            ("201", "AliasView"), body="CanaryBody"),
                "delete": _op("abort the canary: the alias serves the old version alone",
                              ("200", "AliasView")),
            },
            fn + "/history": {"parameters": [_REF], "get": _op(
                "who changed what serves the function: rollbacks, aliases, canaries",
                ("200", "FunctionHistory"),
                params=[_query("limit", "integer"), _query("offset", "integer")])},
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
            **_alert_paths(),
            **_invoke_paths(),
            "/health": _HEALTH,
            "/ready": {"get": {"summary": "readiness (the store reads an object back)",
                               "security": [],
                               "responses": {
                                   "200": {"description": "ready (or degraded: no schedules)",
                                           "content": _json("ReadyView")},
                                   "503": {"description": "the store does not answer or read, "
                                                          "or ignores conditional writes",
                                           "content": _json("ReadyView")}}}},
        },
    }  # fmt: skip


def _alert_paths() -> dict:
    alerts, one = "/api/v1/alerts", "/api/v1/alerts/{alert_id}"
    alert_id = {"name": "alert_id", "in": "path", "required": True,
                "schema": {"type": "string"}, "description": "alr_…"}  # fmt: skip
    return {
        alerts: {
            "get": _op("list alert rules", ("200", "AlertList"), params=[
                {**_query("function"), "description": "function id or name"},
                {**_query("state"), "description": "ok|pending|firing"}]),
            "post": _op("create an alert rule: evaluated once per window on one replica; a "
                        "firing or resolved change POSTs a signed JSON payload to the webhook",
                        ("201", "AlertView"), body="AlertCreate"),
        },
        one: {
            "parameters": [alert_id],
            "get": _op("get an alert rule and its state", ("200", "AlertView")),
            "put": _op("update an alert rule (partial)", ("200", "AlertView"),
                       body="AlertUpdate"),
            "delete": _op("delete an alert rule and its history", ("204", None)),
        },
        one + "/enable": {"parameters": [alert_id], "post": _op(
            "enable an alert rule", ("200", "AlertView"))},
        one + "/disable": {"parameters": [alert_id], "post": _op(
            "disable an alert rule (silently: no resolved notification)", ("200", "AlertView"))},
        one + "/test": {"parameters": [alert_id], "post": _op(
            "send a signed test notification (state: test) now; what the receiver answered",
            ("200", "AlertTestResult"))},
        one + "/history": {"parameters": [alert_id], "get": _op(
            "state changes, delivery attempts and edits, newest first (the last 200 kept)",
            ("200", "AlertHistory"),
            params=[_query("limit", "integer"), _query("offset", "integer")])},
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
        wf + "/{ref}/schedules": {
            "parameters": [ref],
            "get": _op("list a workflow's schedules", ("200", "ScheduleList")),
            "post": _op("create a schedule: each tick starts one execution (the event is its "
                        "input), fired once across all replicas", ("201", "ScheduleView"),
                        body="ScheduleCreate"),
        },
        wf + "/{ref}/schedules/{schedule_id}": {
            "parameters": [ref, _SCHEDULE_ID],
            "get": _op("get a workflow's schedule", ("200", "ScheduleView")),
            "put": _op("update a workflow's schedule", ("200", "ScheduleView"),
                       body="ScheduleUpdate"),
            "delete": _op("delete a workflow's schedule", ("204", None)),
        },
        ex: {"parameters": [ex_id], "get": _op("an execution", ("200", "ExecutionView"))},
        ex + "/history": {"parameters": [ex_id], "get": _op(
            "an execution's events (Step Functions names)", ("200", "HistoryView"))},
        ex + "/stop": {"parameters": [ex_id], "post": _op(
            "abort a running execution", ("200", "ExecutionView"), body="ExecutionStop")},
    }  # fmt: skip


_INVOKE_HEADERS = [
    {"name": "X-Nimbus-Context", "in": "header", "required": False,
     "schema": {"type": "string"}, "description": "caller context, a JSON object"},
    {"name": "X-Nimbus-Log-Type", "in": "header", "required": False,
     "schema": {"type": "string", "enum": ["Tail"]},
     "description": "Tail: the response carries X-Nimbus-Log-Tail (base64, last 4 KB of the log)"},
]  # fmt: skip
_TARGET_QUERY = [
    {**_query("version", "integer"), "description": "a version number (or `name:3` in the path)"},
    {**_query("alias"), "description": "an alias (or `name:prod` in the path)"},
]
_TARGET = {**_REF, "description": "a target: function id or name, `name:version` or `name:alias`"}
_ANY_JSON = {"required": False, "content": {"application/json": {"schema": {}}}}
_RESULT_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (
        ("X-Nimbus-Invocation-Id", "the invocation's id (its logs carry it)"),
        ("X-Nimbus-Duration-Ms", "the guest's run time"),
        ("X-Nimbus-Cold-Start", "true when the artifact was loaded for this call"),
        ("X-Nimbus-Version", "the version that served"),
        ("X-Nimbus-Log-Tail", "with X-Nimbus-Log-Type: Tail, base64 of the log's last 4 KB"),
        ("X-Nimbus-Function-Error", "true when the function itself failed (status 500)"),
    )
}


def _invoke_op() -> dict:
    op = _op("invoke synchronously: the body is the event; the reply is the function's result",
             ("200", None), params=[*_TARGET_QUERY, *_INVOKE_HEADERS])  # fmt: skip
    op["requestBody"] = _ANY_JSON
    op["responses"]["200"]["content"] = {
        "application/json": {"schema": {}},
        "text/plain": {"schema": {"type": "string"}},
    }
    op["responses"]["200"]["headers"] = _RESULT_HEADERS
    op["responses"]["500"] = {
        "description": "function_error (X-Nimbus-Function-Error: true) or memory_limit_exceeded",
        "content": _json("ErrorResponse"),
        "headers": _RESULT_HEADERS,
    }
    op["responses"]["502"] = {"description": "result_too_large", "content": _json("ErrorResponse")}
    op["responses"]["504"] = {"description": "timeout", "content": _json("ErrorResponse")}
    return op  # fmt: skip


_SANDBOX_HEADERS = {
    "Content-Security-Policy": {
        "description": f"on every answer `{SANDBOX}`: no `allow-same-origin`, so a page "
        "served here has an opaque origin, not the console's; a policy of the function's "
        "own follows it in the same header (`ours, theirs`), both enforced",
        "schema": {"type": "string"},
    },
    "X-Content-Type-Options": {
        "description": "on every answer",
        "schema": {"type": "string", "const": "nosniff"},
    },
}


def _webhook_item() -> dict:
    op = {
        "summary": "a function's public URL: the request becomes an AWS Lambda function-URL "
        "event (format 2.0); a {statusCode, headers, body} result shapes the response; "
        "X-Nimbus-Invocation-Type: Event → 202; every answer is sandboxed",
        "requestBody": {"required": False, "content": {"*/*": {"schema": {}}}},
        "parameters": _INVOKE_HEADERS[1:],
        "responses": {
            "200": {
                "description": "the function's response: a {statusCode, headers, body} "
                "result shapes it, any other result is JSON",
                "content": {"*/*": {"schema": {}}},
            },
            "202": {
                "description": "accepted (X-Nimbus-Invocation-Type: Event)",
                "content": _json("InvocationAccepted"),
            },
            "502": {"description": "the function failed", "content": _json("ErrorResponse")},
            "504": {"description": "timeout", "content": _json("ErrorResponse")},
            **_PUBLIC_ERRORS,
        },
    }
    op["responses"] = {
        status: {**response, "headers": {**response.get("headers", {}), **_SANDBOX_HEADERS}}
        for status, response in op["responses"].items()
    }
    return {method: op for method in HTTP_METHODS}


def _invoke_paths() -> dict:
    fn = "/api/v1/functions/{ref}"
    async_op = _op("invoke asynchronously: durable before the 202; the version is fixed now",
                   ("202", None), params=_TARGET_QUERY)  # fmt: skip
    async_op["requestBody"] = _ANY_JSON
    async_op["responses"]["202"]["content"] = _json("InvocationAccepted")
    key_id = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        fn + "/invoke": {"parameters": [_TARGET], "post": _invoke_op()},
        fn + "/async": {"parameters": [_TARGET], "post": async_op},
        fn + "/invocations": {"parameters": [_REF], "get": _op(
            "recent invocations (sync, webhook, async), newest first; sync ones ≤ 0.5 s stale",
            ("200", "InvocationList"), params=[
                {**_query("limit", "integer"), "description": "1–1000, default 100"},
                {**_query("since"), "description": "RFC 3339, Unix seconds or an age (15m)"},
                {**_query("status"), "description": "queued|running|succeeded|failed|timed_out"},
                {**_query("trigger"), "description": "api|webhook|async|schedule|workflow"}])},
        fn + "/webhook/rotate": {"parameters": [_REF], "post": _op(
            "give the function a new webhook key (the old URL stops working)",
            ("200", "FunctionView"))},
        "/api/v1/invocations/{invocation_id}": {"get": _op(
            "an async invocation's state and result", ("200", "InvocationView"))},
        "/api/v1/keys": {
            "get": _op("list API keys (admin)", ("200", "KeyList")),
            "post": _op("make an API key with scopes; the secret is shown once",
                        ("201", "KeyCreated"), body="KeyCreate"),
        },
        "/api/v1/keys/{key_id}": {"parameters": [key_id],
                                  "delete": _op("revoke an API key", ("204", None))},
        "/openapi.json": {"get": {"summary": "this document", "security": [], "responses": {
            "200": {"description": "OpenAPI 3.1", "content": {"application/json": {
                "schema": {"type": "object"}}}}}}},
        "/api/health": _HEALTH,
        "/webhook/{key}": _webhook_item(),
        "/webhook/{key}/{path}": _webhook_item(),
        "/": {"get": {"summary": "the web console's HTML shell (strict CSP)", "security": [],
                      "responses": {"200": {"description": "HTML", "content": {
                                        "text/html": {"schema": {"type": "string"}}}},
                                    "503": {"description": "the console is not built",
                                            "content": {"text/plain": {"schema": {
                                                "type": "string"}}}}}}},
        "/assets/{name}": {"parameters": [{"name": "name", "in": "path", "required": True,
                                           "schema": {"type": "string"}}],
                           "get": {"summary": "a console asset (hashed name, long cache)",
                                   "security": [],
                                   "responses": {"200": {"description": "JS or CSS",
                                                         "content": {"text/javascript": {
                                                             "schema": {"type": "string"}},
                                                             "text/css": {"schema": {
                                                                 "type": "string"}}}},
                                                 "404": {"description": "no such asset",
                                                         "content": _json("ErrorResponse")}}}},
    }  # fmt: skip

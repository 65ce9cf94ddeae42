"""The Falcon application factory."""

from __future__ import annotations

import threading

import falcon

from store.keys import KeyRepo

from ..platform import Platform
from ..services.keys import KeyService
from ..services.runtimes import RuntimeCatalog
from . import errors
from .middleware import AccessLog, ApiKeyAuth, RequestId, UserContentSandbox
from .openapi import app_routes, document
from .ratelimit import RateLimit
from .resources.alerts import (
    AlertHistoryResource,
    AlertResource,
    AlertsResource,
    AlertSwitchResource,
    AlertTestResource,
)
from .resources.aliases import AliasesResource, AliasResource, CanaryResource
from .resources.asyncinv import AsyncInvokeResource, InvocationResource
from .resources.console import ConsoleAssetResource, ConsoleFiles, ConsoleShellResource
from .resources.functions import (
    BulkDeleteResource,
    BulkUpdateResource,
    FunctionBuildResource,
    FunctionCodeResource,
    FunctionResource,
    FunctionsResource,
    WebhookRotateResource,
)
from .resources.invoke import InvokeResource
from .resources.keys import KeyResource, KeysResource
from .resources.logs import InvocationListResource, LogsResource
from .resources.runtimes import RuntimeResource, RuntimesResource
from .resources.schedules import AllSchedulesResource, ScheduleResource, SchedulesResource
from .resources.system import HealthResource, OpenApiResource, ReadyResource
from .resources.usage import (
    FunctionStatsResource,
    MetricsResource,
    QuotaResource,
    StatsResource,
)
from .resources.versions import (
    HistoryResource,
    RollbackResource,
    VersionResource,
    VersionsResource,
)
from .resources.webhook import WebhookResource
from .resources.workflows import (
    ExecutionHistoryResource,
    ExecutionResource,
    ExecutionStopResource,
    WorkflowExecutionsResource,
    WorkflowResource,
    WorkflowsResource,
)

VERSION = "0.1.0"


def create_app(platform: Platform, api_key: str) -> falcon.App:
    access_log = [AccessLog()] if platform.settings.access_log else []
    keys = KeyService(KeyRepo(platform.store), api_key, platform.key_uses)
    settings = platform.settings
    limit = RateLimit(settings.rate_limit_per_key, settings.rate_limit_per_webhook)
    # PERF: off by default, then not a middleware every request passes through
    limits = [limit] if limit.per_key or limit.per_webhook else []
    sandbox = UserContentSandbox()
    app = falcon.App(middleware=[RequestId(), *access_log, ApiKeyAuth(keys), *limits, sandbox])
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    service = platform.functions
    spool = platform.settings.data_dir / "work" / "uploads"
    wait = platform.settings.build_wait_sec

    health = HealthResource()
    app.add_route("/health", health)
    app.add_route("/api/health", health)
    app.add_route("/ready", ReadyResource(platform.store, lambda: platform.schedules_state,
                                          lambda: platform.store_refused))  # fmt: skip
    runtimes = RuntimeCatalog(platform.settings)
    app.add_route(
        "/openapi.json", OpenApiResource(lambda: document(VERSION, app_routes(app)), runtimes.names)
    )
    metrics = MetricsResource(platform.metrics, platform.settings.metrics_token)
    app.add_route("/metrics", metrics)
    app.add_route("/api/metrics", metrics)
    app.add_route("/api/v1/stats", StatsResource(platform.stats, platform.window_stats))
    app.add_route("/api/v1/quota", QuotaResource(platform.quota))
    app.add_route("/api/v1/runtimes", RuntimesResource(runtimes))
    app.add_route("/api/v1/keys", KeysResource(keys))
    app.add_route("/api/v1/keys/{key_id}", KeyResource(keys))
    app.add_route("/api/v1/runtimes/{name}", RuntimeResource(runtimes))

    v1 = "/api/v1/functions"
    waiters = threading.BoundedSemaphore(platform.settings.max_build_waiters)
    app.add_route(v1, FunctionsResource(service, spool, wait, waiters))
    app.add_route(f"{v1}/bulk-delete", BulkDeleteResource(service))
    app.add_route(f"{v1}/bulk-update", BulkUpdateResource(service))
    app.add_route(v1 + "/{ref}", FunctionResource(service, spool, wait, waiters))
    app.add_route(v1 + "/{ref}/code", FunctionCodeResource(service))
    app.add_route(v1 + "/{ref}/build", FunctionBuildResource(service))
    app.add_route(v1 + "/{ref}/invoke", InvokeResource(platform.invocations))
    app.add_route(v1 + "/{ref}/webhook/rotate", WebhookRotateResource(service))
    app.add_route(v1 + "/{ref}/logs", LogsResource(platform.logs))
    app.add_route(v1 + "/{ref}/stats", FunctionStatsResource(platform.window_stats))
    app.add_route(v1 + "/{ref}/invocations", InvocationListResource(platform.invocation_list))

    versions = platform.versions
    app.add_route(v1 + "/{ref}/versions", VersionsResource(versions))
    app.add_route(v1 + "/{ref}/versions/{version}", VersionResource(versions))
    app.add_route(
        v1 + "/{ref}/versions/{version}/rollback",
        RollbackResource(versions, service.view),
    )
    app.add_route(v1 + "/{ref}/history", HistoryResource(versions))
    app.add_route(v1 + "/{ref}/aliases", AliasesResource(platform.aliases))
    app.add_route(v1 + "/{ref}/aliases/{name}", AliasResource(platform.aliases))
    app.add_route(v1 + "/{ref}/aliases/{name}/canary", CanaryResource(platform.canaries))
    app.add_route(v1 + "/{ref}/async", AsyncInvokeResource(platform.async_invocations))
    app.add_route("/api/v1/schedules", AllSchedulesResource(platform.schedules))
    app.add_route(v1 + "/{ref}/schedules", SchedulesResource(platform.schedules))
    app.add_route(v1 + "/{ref}/schedules/{schedule_id}", ScheduleResource(platform.schedules))
    app.add_route(
        "/api/v1/invocations/{invocation_id}", InvocationResource(platform.async_invocations)
    )

    workflows = platform.workflows
    app.add_route("/api/v1/workflows", WorkflowsResource(workflows))
    app.add_route("/api/v1/workflows/{ref}", WorkflowResource(workflows))
    app.add_route("/api/v1/workflows/{ref}/executions", WorkflowExecutionsResource(workflows))
    app.add_route("/api/v1/workflows/{ref}/schedules",
                  SchedulesResource(platform.schedules, "workflow"))  # fmt: skip
    app.add_route("/api/v1/workflows/{ref}/schedules/{schedule_id}",
                  ScheduleResource(platform.schedules, "workflow"))  # fmt: skip
    app.add_route("/api/v1/executions/{execution_id}", ExecutionResource(workflows))
    app.add_route("/api/v1/executions/{execution_id}/history", ExecutionHistoryResource(workflows))
    app.add_route("/api/v1/executions/{execution_id}/stop", ExecutionStopResource(workflows))

    alerts, alert = platform.alerts, "/api/v1/alerts/{alert_id}"
    app.add_route("/api/v1/alerts", AlertsResource(alerts))
    app.add_route(alert, AlertResource(alerts))
    app.add_route(alert + "/enable", AlertSwitchResource(alerts, enabled=True))
    app.add_route(alert + "/disable", AlertSwitchResource(alerts, enabled=False))
    app.add_route(alert + "/test", AlertTestResource(alerts))
    app.add_route(alert + "/history", AlertHistoryResource(alerts))

    console = ConsoleFiles(platform.settings.console_dir)
    app.add_route("/", ConsoleShellResource(console))
    app.add_route("/assets/{name}", ConsoleAssetResource(console))

    webhook = WebhookResource(platform.webhooks, platform.invocations, platform.async_invocations)
    app.add_route("/webhook/{key}", webhook)
    app.add_route("/webhook/{key}/{path:path}", webhook)
    return app

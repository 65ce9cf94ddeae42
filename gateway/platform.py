"""The services one gateway worker runs, wired together from the settings."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import compiler
from sandbox import Deployment, NativeConfig, Sandbox, SandboxConfig
from store import Store, open_store
from store.alerts import AlertRepo
from store.canaries import CanaryRepo
from store.collect import ArtifactCollector
from store.functions import FunctionRepo
from store.history import HistoryRepo
from store.invocations import InvocationRepo
from store.keys import KeyRepo
from store.leases import Leases
from store.schedules import ScheduleRepo
from store.workflows import WorkflowRepo

from .api.auth import key_file, read_api_key
from .jobs.alerts import AlertEvaluator
from .jobs.asyncq import AsyncInvocations
from .jobs.builds import BuildQueue
from .jobs.canary import CanaryRunner
from .jobs.periodic import PeriodicJobs
from .jobs.schedules import ScheduleTicker
from .jobs.workflows import WorkflowRunner
from .services.alert_webhook import AlertWebhook
from .services.alerts import AlertService
from .services.aliases import AliasService
from .services.canary import CanaryService
from .services.concurrency import FunctionConcurrency
from .services.deployments import DeploymentCache
from .services.env_crypto import EnvCipher
from .services.functions import FunctionService
from .services.invoke import InvokeService
from .services.keys import WRITE_USES_EVERY_SEC, KeyUses
from .services.outbound import OutboundClient
from .services.schedules import ScheduleService
from .services.versions import VersionService
from .services.webhooks import WebhookDirectory
from .services.workflows.service import WorkflowService
from .settings import Settings
from .store_check import STORE_REFUSAL
from .telemetry.flusher import OutcomeFlusher
from .telemetry.invocations import InvocationLister
from .telemetry.logs import InvocationLogs, LogReader
from .telemetry.metrics import Metrics
from .telemetry.stats import StatsBook
from .telemetry.usage import QuotaService, StatsService
from .telemetry.window_query import WindowQuery
from .telemetry.window_rollup import WindowRollup
from .telemetry.window_stats import WindowStatsService
from .telemetry.windows import WindowBook

log = logging.getLogger("nimbus")


@dataclass
class Platform:
    settings: Settings
    store: Store
    repo: FunctionRepo
    sandbox: Sandbox
    builds: BuildQueue
    functions: FunctionService
    invocations: InvokeService
    webhooks: WebhookDirectory
    async_invocations: AsyncInvocations
    metrics: Metrics
    recorder: OutcomeFlusher
    logs: LogReader
    invocation_list: InvocationLister
    stats: StatsService
    window_stats: WindowStatsService
    quota: QuotaService
    schedules: ScheduleService
    workflows: WorkflowService
    workflow_runner: WorkflowRunner
    leases: Leases  # this worker's: the background runners claim through them
    periodic: PeriodicJobs
    key_uses: KeyUses  # the API keys' last_used_at, written by a periodic job
    ticker: ScheduleTicker | None  # None: SCHEDULES_ENABLED=false on this server

    versions: VersionService
    aliases: AliasService
    canaries: CanaryService
    alerts: AlertService
    alert_evaluator: AlertEvaluator
    # set by begin_stop: its budget and the threads stopping the rooms
    _stopping: tuple[StopBudget, list[threading.Thread]] | None = field(
        default=None, init=False, repr=False
    )
    _stop_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, metrics_dir: Path | None = None) -> Platform:
        """`metrics_dir`: prometheus-client's multiprocess folder, when under gunicorn."""
        store = open_store(
            settings.nimbus_store,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.aws_region,
            timeouts=settings.store_timeouts,
        )
        repo = FunctionRepo(store)
        leases = Leases(store)
        writer = leases.owner
        metrics = Metrics(metrics_dir)
        # NOTE: the Sandbox makes its wasmtime Engine on first use, in the worker.
        sandbox = Sandbox(
            store,
            SandboxConfig(
                cache_dir=settings.data_dir / "cache" / "precompiled",
                # Shared runtimes precompiled and unpacked at install time.
                seed_cache_dirs=compiler.runtime_cache_dirs(),
                max_concurrent=settings.max_concurrent,
                memory_cache_entries=settings.loaded_artifacts,
                queue_size=settings.invoke_queue_size,
                queue_timeout_sec=settings.invoke_queue_timeout_sec,
                max_stuck_threads=settings.max_stuck_threads,
                native=native_config(settings),
                signing_key=artifact_signing_key(settings),
                pooling=settings.pooling,
                pool_instances=settings.pool_instances,
                max_memory_mb=settings.max_memory_mb,
                guest_memory_mb=settings.guest_memory_mb,
                pool_keep_resident_kb=settings.pool_keep_resident_kb,
                prewarm_per_deployment=settings.prewarm_per_function,
                prewarm_idle_sec=settings.prewarm_idle_sec,
                compile_memory_mb=settings.build_memory_mb,
            ),
        )
        builds = BuildQueue(
            repo,
            leases,
            workdir=settings.data_dir / "work" / "builds",
            concurrency=settings.build_concurrency,
            lease_sec=settings.build_lease_sec,
            poll_sec=settings.build_poll_sec,
            idle_poll_max_sec=settings.idle_poll_max_sec,
            max_attempts=settings.build_max_attempts,
            precompile=sandbox.precompile,
            build_config=compiler.BuildConfig(
                toolchains_dir=settings.toolchains_dir,
                timeout_sec=settings.build_timeout_sec,
                memory_mb=settings.build_memory_mb,
                max_pids=settings.build_max_pids,
                max_disk_mb=settings.build_max_disk_mb,
                install_toolchains=settings.toolchains_auto_install,
            ),
            check_source=sandbox.check,
            history=HistoryRepo(store),
            on_finished=metrics.observe_build,
        )
        versions = VersionService(
            repo, HistoryRepo(store), max_versions=settings.max_versions_per_function
        )
        aliases = AliasService(repo, HistoryRepo(store), settings.public_url)
        functions = FunctionService(
            repo, settings, on_enqueue=builds.wake, on_new_version=versions.prune_quietly
        )
        cache = DeploymentCache(repo, max_age=settings.cache_max_age_sec,
                                stale_if_error=settings.store_outage_grace_sec)  # fmt: skip
        logs = InvocationLogs(
            store,
            retention_sec=settings.log_retention_hours * 3600,
            sweep_every_sec=settings.log_sweep_interval_sec,
            owner=writer,
        )
        book = StatsBook(
            store,
            writer,
            heartbeat_sec=settings.stats_fold_after_sec / 4,
            fold_after_sec=settings.stats_fold_after_sec,
        )

        def refresh_gauges() -> None:
            metrics.sample_sandbox(sandbox.stats())
            metrics.set_async_queue_depth(async_invocations.depth)

        rollup = WindowRollup(
            store,
            leases.hold_job,
            grace_sec=settings.stats_rollup_grace_sec,
            raw_retention_sec=settings.stats_raw_retention_hours * 3600,
            retention_sec=settings.stats_retention_days * 86400,
        )
        recorder = OutcomeFlusher(
            logs,
            book,
            metrics,
            refresh_gauges,
            writer=writer,
            windows=WindowBook(store, writer),
            rollup=rollup,
            interval_sec=settings.log_flush_sec,
            batch_max=settings.log_batch_max,
            max_log_bytes=settings.log_max_bytes_per_invocation,
        )
        cipher = EnvCipher.from_setting(settings.nimbus_env_keys)
        concurrency = FunctionConcurrency(settings.data_dir / "run" / "concurrency")
        invocations = InvokeService(cache, sandbox, recorder, cipher, concurrency)
        invocations.resolve_alias = aliases.pick
        webhooks = WebhookDirectory(repo, cache)
        queue = InvocationRepo(store)
        async_invocations = AsyncInvocations(
            queue,
            invocations,
            leases,
            concurrency=settings.async_concurrency,
            max_queue_depth=settings.async_max_queue_depth,
            max_queued_per_function=settings.async_max_queued_per_function,
            lease_margin_sec=settings.async_lease_margin_sec,
            poll_sec=settings.async_poll_sec,
            max_attempts=settings.async_max_attempts,
            retry_base_sec=settings.async_retry_base_sec,
            error_retry_sec=settings.async_error_retry_sec,
            retention_sec=settings.invocation_retention_hours * 3600,
            idle_poll_max_sec=settings.idle_poll_max_sec,
        )
        workflow_repo = WorkflowRepo(store)
        workflows = WorkflowService(
            workflow_repo,
            repo,
            on_start=lambda execution: workflow_runner.wake(execution),
            max_duration_sec=settings.workflow_max_duration_sec,
        )
        workflow_runner = WorkflowRunner(
            workflow_repo,
            workflows,
            invocations,
            leases,
            concurrency=settings.workflow_concurrency,
            task_concurrency=settings.workflow_task_concurrency,
            lease_sec=settings.workflow_lease_sec,
            max_attempts=settings.workflow_max_attempts,
            max_history=settings.workflow_max_history_events,
        )
        collector = ArtifactCollector(
            store,
            grace_sec=settings.artifact_gc_grace_sec,
            pinned=lambda: [repo.blob_key(sha) for sha in compiler.runtime_components()],
        )
        periodic = recurring_jobs(settings, leases, logs, book, rollup, async_invocations,
                                  collector)  # fmt: skip
        periodic.every(settings.workflow_scan_sec, workflow_runner.scan, name="workflow-scan")
        canary_runner = CanaryRunner(repo, CanaryRepo(store), HistoryRepo(store), leases,
                                     WindowQuery(store, recorder.flush))  # fmt: skip
        periodic.every(settings.canary_scan_sec, canary_runner.scan, name="canary-steps")
        alert_repo = AlertRepo(store, history_max=settings.alert_history_max)
        webhook = AlertWebhook(OutboundClient(allow_private=settings.alert_webhook_allow_private,
                                              timeout_sec=settings.alert_webhook_timeout_sec),
                               cipher)  # fmt: skip
        alerts = AlertService(alert_repo, repo, webhook, max_alerts=settings.max_alerts,
                              allow_private=settings.alert_webhook_allow_private)  # fmt: skip
        alert_evaluator = AlertEvaluator(
            alert_repo, leases, WindowQuery(store, recorder.flush), webhook,
            settle_sec=settings.log_flush_sec + settings.alert_settle_margin_sec,
            max_attempts=settings.alert_delivery_max_attempts,
            retry_base_sec=settings.alert_delivery_retry_base_sec,
            on_event=metrics.observe_alert,
        )  # fmt: skip
        periodic.every(settings.alert_scan_sec, alert_evaluator.scan, name="alert-rules")
        key_uses = KeyUses(KeyRepo(store))
        periodic.every(WRITE_USES_EVERY_SEC, key_uses.write, name="key-last-used")
        return cls(
            settings, store, repo, sandbox, builds, functions, invocations, webhooks,
            async_invocations,
            metrics=metrics,
            recorder=recorder,
            logs=LogReader(repo, logs, recorder.flush, invocations=queue,
                           max_timeout_sec=settings.max_timeout_sec),
            invocation_list=InvocationLister(repo, logs, queue, recorder.flush),
            stats=StatsService(repo, book, recorder.flush),
            window_stats=WindowStatsService(
                repo,
                WindowQuery(
                    store, recorder.flush, max_span_sec=(settings.stats_retention_days + 1) * 86400
                ),
                staleness_sec=settings.log_flush_sec,
            ),
            quota=QuotaService(
                repo,
                settings,
                running_here=lambda: sandbox.stats()["running"],
                running_on_server=lambda: int(metrics.value("nimbus_sandbox_running")),
            ),
            schedules=ScheduleService(
                ScheduleRepo(store), repo, max_per_function=settings.max_schedules_per_function,
                # late-bound: the versions service installs the resolver
                resolve_alias=lambda fn, alias: invocations.resolve_alias(fn, alias),
                workflows=workflow_repo,
                reload_sec=settings.schedule_reload_sec,
            ),
            workflows=workflows,
            workflow_runner=workflow_runner,
            leases=leases,
            periodic=periodic,
            key_uses=key_uses,
            ticker=ScheduleTicker(
                ScheduleRepo(store), queue, invocations, leases,
                wake_dispatcher=async_invocations.wake,
                workflows=workflows,
                on_tick=metrics.observe_tick,
                reload_sec=settings.schedule_reload_sec,
                misfire_grace_sec=settings.schedule_misfire_grace_sec,
                fire_threads=settings.schedule_fire_threads,
            ) if settings.schedules_enabled else None,


            versions=versions,
            aliases=aliases,
            canaries=CanaryService(repo, CanaryRepo(store), HistoryRepo(store), aliases),
            alerts=alerts,
            alert_evaluator=alert_evaluator,
        )  # fmt: skip

    def start(self) -> None:
        """Make the engine and start background work; call in the worker, after fork."""
        self.sandbox.start()
        if self.settings.preload_runtimes:
            threading.Thread(
                target=self._preload_runtimes, name="runtime-preload", daemon=True
            ).start()
        threading.Thread(target=self._migrate_webhook_index, name="migrate", daemon=True).start()
        self.recorder.start()
        self.builds.start()
        self.async_invocations.start()
        self.workflow_runner.start()
        self.periodic.start()
        if self.ticker is not None:
            self.ticker.on_refused = self._refuse_store
            self.ticker.start()

    @property
    def store_refused(self) -> bool:
        """The store was found to ignore conditional writes after start, and the settings
        do not say to degrade: this worker runs no background work and is not ready."""
        return (
            self.schedules_state == "refused"
            and self.settings.store_without_conditional_writes == "refuse"
        )

    def _refuse_store(self) -> None:
        if not self.store_refused:
            return
        log.error("%s; this worker takes no background work and /ready answers 503",
                  STORE_REFUSAL)  # fmt: skip
        # Every runner below claims through leases, which such a store cannot arbitrate.
        self.periodic.stop()
        self.workflow_runner.stop()
        self.async_invocations.stop()
        self.builds.stop()

    @property
    def schedules_state(self) -> str:
        """running | refused | starting | disabled, for /ready."""
        return "disabled" if self.ticker is None else self.ticker.state

    def _migrate_webhook_index(self) -> None:
        """Webhook index entries from before they were named by hash (idempotent)."""
        try:
            moved = self.repo.migrate_webhook_index()
        except Exception as exc:  # lookups still find (and move) unmigrated entries
            log.warning("webhook index not migrated: %s", exc)
            return
        if moved:
            log.info("moved %d webhook index entries to hashed names", moved)

    def _preload_runtimes(self) -> None:
        """PERF(nimbus): load the shared language runtimes (a ~38 MB precompiled component
        for Python) at worker start, not on the worker's first invoke (~0.2 s)."""
        for sha in compiler.runtime_components():
            preload = Deployment(function_id="_runtime", function_name="runtime", version=0,
                                 artifact_key=self.repo.blob_key(sha), artifact_sha256=sha,
                                 kind="component")  # fmt: skip
            try:
                self.sandbox.prepare(preload)
            except Exception as exc:  # only a missed warm-up: the first invoke loads it
                log.info("runtime %s not preloaded: %s", sha[:12], exc)

    def begin_stop(self, budget_sec: float | None = None) -> None:
        """Start stopping the background rooms, all at once, to be done within `budget_sec`
        (default GRACEFUL_TIMEOUT_SEC); `stop` finishes. Called at SIGTERM, so they hand
        their work back while the HTTP calls in flight drain. Idempotent."""
        with self._stop_lock:
            if self._stopping is None:
                self._stopping = self._stop_rooms(budget_sec)

    def _stop_rooms(self, budget_sec: float | None) -> tuple[StopBudget, list[threading.Thread]]:
        budget = StopBudget.of(
            self.settings.graceful_timeout_sec if budget_sec is None else budget_sec
        )
        graceful = self.settings.graceful_timeout_sec
        rooms: list[tuple[str, Callable[[float], None], float]] = [
            ("periodic jobs", self.periodic.stop, ROOM_WAIT_SEC),
            ("workflow runner", self.workflow_runner.stop, graceful / 4),
            ("async invocations", self.async_invocations.stop, graceful / 2),
            ("builds", self.builds.stop, ROOM_WAIT_SEC),
        ]
        if self.ticker is not None:
            rooms.insert(0, ("schedule ticker", self.ticker.stop, ROOM_WAIT_SEC))
        threads = [
            threading.Thread(target=_stop_room, args=(name, stop, budget.wait(share)),
                             name=f"stop-{name.replace(' ', '-')}", daemon=True)
            for name, stop, share in rooms
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        return budget, threads

    def stop(self, budget_sec: float | None = None) -> None:
        """Stop this worker within `budget_sec` (default GRACEFUL_TIMEOUT_SEC; `begin_stop`'s,
        if called): the background rooms hand back what they run, then the last outcomes
        are flushed and this worker's stats folded, then the sandbox and store close."""
        self.begin_stop(budget_sec)
        assert self._stopping is not None
        budget, threads = self._stopping
        for thread in threads:
            thread.join(max(0.0, budget.rooms_until - time.monotonic()))
        late = [thread.name for thread in threads if thread.is_alive()]
        if late:
            log.warning("stopping: %s not done in time; going on", ", ".join(late))
        # after the last invocations: flush, fold this worker's stats
        self.recorder.stop(timeout=max(0.0, budget.until - time.monotonic()))
        self.alert_evaluator.webhook.outbound.close()
        self.sandbox.close()
        self.store.close()
        log.info("worker stopped in %.2f s (it had %.2f s)",
                 time.monotonic() - budget.began, budget.until - budget.began)  # fmt: skip


# NOTE(shutdown): gunicorn's master SIGKILLs a worker GRACEFUL_TIMEOUT_SEC after its
# SIGTERM, whatever it is doing. Its rooms used to stop one after another, each waiting
# its own time (schedules 5 s, periodic jobs 5 + 5, workflows G/4, async G/2 + G/2,
# builds 5 s per build thread): the sum passed G, and what stopped last (the builds'
# hand-back, the last flush) was cut by the SIGKILL. Now they stop at once, each waiting
# at most its share and never past the budget's end less the time kept for hand-backs,
# and for the last flush and closes.
ROOM_WAIT_SEC = 5.0  # how long a room waits for a build or periodic job to finish
_HAND_BACK_SHARE, _HAND_BACK_MAX_SEC = 0.15, 3.0  # kept after the waits, for hand-backs
_FINAL_SHARE, _FINAL_MAX_SEC = 0.2, 3.0  # kept at the end: the last flush, stats, closes


@dataclass(frozen=True)
class StopBudget:
    """The times (monotonic) by which each part of a worker's stop is done."""

    began: float
    until: float  # all of it
    rooms_until: float  # the rooms, hand-backs included
    waits_until: float  # running work's last moment to finish before it is handed back

    @classmethod
    def of(cls, budget_sec: float, now: float | None = None) -> StopBudget:
        budget_sec = max(0.0, budget_sec)
        began = time.monotonic() if now is None else now
        until = began + budget_sec
        rooms_until = until - min(budget_sec * _FINAL_SHARE, _FINAL_MAX_SEC)
        waits_until = rooms_until - min(budget_sec * _HAND_BACK_SHARE, _HAND_BACK_MAX_SEC)
        return cls(began, until, rooms_until, waits_until)

    def wait(self, share_sec: float) -> float:
        """How long a room stopping now may wait for its running work: its share, within
        the budget."""
        return max(0.0, min(share_sec, self.waits_until - time.monotonic()))


def _stop_room(name: str, stop: Callable[[float], None], timeout: float) -> None:
    try:
        stop(timeout)
    except Exception:
        log.exception("stopping the %s failed", name)


def recurring_jobs(
    settings: Settings,
    leases: Leases,
    logs: InvocationLogs,
    book: StatsBook,
    rollup: WindowRollup,
    async_invocations: AsyncInvocations,
    collector: ArtifactCollector,
) -> PeriodicJobs:
    """A worker's recurring upkeep, each job with its interval (its runners add theirs).

    `hold=leases`: once per interval across all workers sharing the store; the
    log sweep, the roll-up and artifact collection take holds of their own periods.
    """
    jobs = PeriodicJobs(tick_sec=min(0.5, settings.workflow_scan_sec))
    upkeep = settings.upkeep_interval_sec
    jobs.every(upkeep, logs.maybe_sweep, name="log-sweep", jitter=True)
    jobs.every(upkeep, book.fold_stale, name="stats-fold", jitter=True, hold=leases)
    jobs.every(upkeep, rollup.upkeep, name="stats-rollup", jitter=True)
    jobs.every(settings.invocation_sweep_interval_sec, async_invocations.retention_sweep,
               name="invocation-retention", jitter=True, hold=leases)  # fmt: skip
    grace = settings.artifact_gc_grace_sec
    if grace > 0:
        jobs.every(min(300.0, grace / 4), collector.collect, name="artifact-collect", jitter=True)
    return jobs


def artifact_signing_key(settings: Settings) -> bytes | None:
    """The HMAC key of precompiled artifacts' manifests in the store.

    NOTE(security): derived from a secret that is not in the store (NIMBUS_SIGNING_SECRET,
    else the API key), so write access to the bucket alone cannot put native code into
    every worker: a manifest it did not sign is refused and the wasm compiled again.
    """
    secret = settings.nimbus_signing_secret or settings.nimbus_api_key
    if not secret and key_file(settings).exists():
        secret = read_api_key(settings)
    if not secret:
        return None
    return hmac.new(secret.encode(), b"nimbus precompiled-artifact manifests v1", "sha256").digest()


def native_config(settings: Settings) -> NativeConfig:
    extra = {"image": settings.native_image} if settings.native_image else {}
    return NativeConfig(
        work_dir=settings.native_dir,
        docker_host=settings.docker_host,
        idle_sec=settings.native_idle_sec,
        max_idle_per_function=settings.native_max_idle_per_function,
        pids_limit=settings.native_pids_limit,
        tmpfs_mb=settings.native_tmpfs_mb,
        cpus=settings.native_cpus,
        **extra,
    )

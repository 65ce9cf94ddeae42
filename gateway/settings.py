"""One settings object, read once at start from the environment and `nimbus.toml`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from store import StoreTimeouts


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", toml_file="nimbus.toml"
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str | None = None
    data_dir: Path = Path("./data")
    nimbus_store: str | None = None
    s3_endpoint_url: str | None = None
    aws_region: str | None = None
    # A store that ignores conditional writes (If-None-Match: *, If-Match) cannot arbitrate
    # leases or fire a schedule's tick once: `nimbus serve` refuses to run on it, unless
    # told to "degrade" (no schedules; the other background work then rests on luck).
    store_without_conditional_writes: Literal["refuse", "degrade"] = "refuse"
    nimbus_api_key: str | None = None
    # Signs precompiled artifacts' manifests in the store (default: derived from the API key)
    nimbus_signing_secret: str | None = None
    # Encrypt functions' env var values at rest (comma-separated secrets; the first seals)
    nimbus_env_keys: str | None = None
    # Request rate limits in the `limits` package's notation ("100/second;2000/minute"),
    # per worker: the effective rate is × WORKERS × replicas. Off by default.
    rate_limit_per_key: str | None = None
    rate_limit_per_webhook: str | None = None
    metrics_token: str | None = None  # when set, /metrics needs `Authorization: Bearer <it>`

    workers: int = Field(2, ge=1)
    threads: int | None = Field(None, ge=1)
    max_concurrent: int = Field(10, ge=1)
    invoke_queue_size: int = Field(5, ge=0)  # callers waiting for a slot before 429
    invoke_queue_timeout_sec: float = 2.0
    # Guest threads still blocked in a host call past their deadline (a component
    # sleeping in WASI preview 2) a worker holds at most (then components answer
    # 429); at half as many it drains and is replaced (gateway/serve.py).
    # Default: MAX_CONCURRENT.
    max_stuck_threads: int | None = Field(None, ge=1)
    # The memory_mb of the guests running at once in a worker, in all (0: no bound).
    # Default: 3/4 of the machine's memory (or of the server's cgroup limit) / WORKERS.
    # MAX_CONCURRENT guests of MAX_MEMORY_MB each (10 × 4 GB a worker) can ask more
    # than a machine has, and the kernel's OOM killer then ends a whole worker.
    guest_memory_mb: int | None = Field(None, ge=0)
    # Artifacts kept loaded per worker (LRU; file-backed maps of the precompiled
    # files). Fewer than the functions served round-robin means a disk load per call.
    loaded_artifacts: int = 1024
    preload_runtimes: bool = True  # load the shared Python/JS runtimes at worker start
    # wasmtime's pooling allocator: instance slots reserved once per worker and reset
    # copy-on-write after each call (sandbox/_pool.py, docs/decisions/0009).
    pooling: bool = True
    pool_instances: int | None = None  # slots per worker; default: every guest that can hold one
    # Per memory slot: reset in place, not by the kernel. 16 MiB covers the Python
    # runtime's whole initial memory (its dirty pages lie near the top: less helps
    # nothing); costs ~16 MiB per slot a worker has used (decision 0009, fourth pass).
    pool_keep_resident_kb: int = 16384
    # Fresh instances made off the request path per Python/JS/component function version
    # in use (each serves one call); dropped after PREWARM_IDLE_SEC without a call.
    prewarm_per_function: int = 1
    prewarm_idle_sec: float = 60
    cache_max_age_sec: float = 1.0  # staleness of the invoke path's function records
    # While the store does not answer, records it confirmed this recently keep serving.
    store_outage_grace_sec: float = Field(300.0, ge=0)
    # A hung store costs a call about attempts × read timeout (store.StoreTimeouts).
    store_connect_timeout_sec: float = Field(2.0, gt=0)
    store_read_timeout_sec: float = Field(10.0, gt=0)
    store_attempts: int = Field(2, ge=1, le=10)
    store_quick_timeout_sec: float = Field(1.5, gt=0)  # invoke revalidation, /ready
    log_level: str = "info"
    # One line per request. Off by default, as in gunicorn: invocations already
    # have their own logs and metrics, and a log line is ~15% of a warm invoke.
    access_log: bool = False

    default_timeout_sec: float = Field(30, gt=0)
    max_timeout_sec: float = Field(300, gt=0)
    default_memory_mb: int = Field(128, ge=1)
    min_memory_mb: int = Field(16, ge=1)
    max_memory_mb: int = Field(4096, ge=1)

    async_concurrency: int = Field(4, ge=1)  # async invocations running at once per worker
    async_max_queue_depth: int = 10000  # beyond it, async accepts answer 429
    # One function's queued async invocations; beyond it its accepts answer 429, so
    # one flooded function cannot fill the queue the others share.
    async_max_queued_per_function: int = Field(1000, ge=1)
    async_lease_margin_sec: float = 30  # lease = the function's timeout + this
    async_poll_sec: float = 0.5
    # While a queue (async, builds) stays empty a worker looks at it less often, down to
    # once per this; work accepted by a worker wakes its own at once (jobs/polling.py).
    idle_poll_max_sec: float = Field(5.0, gt=0)
    async_max_attempts: int = 3
    async_retry_base_sec: float = 1.0
    async_error_retry_sec: float = 60.0  # a function's async_retries: 1 min, then 2, as Lambda
    # Finished async (and scheduled) invocation records older than this are deleted;
    # a deleted function's go at once. One sweep per interval, cluster-wide.
    invocation_retention_hours: float = Field(168, gt=0)
    invocation_sweep_interval_sec: float = Field(600, gt=0)

    # Workflows (gateway/jobs/workflows.py)
    workflow_concurrency: int = Field(16, ge=1)  # executions one worker drives at once
    workflow_task_concurrency: int = Field(8, ge=1)  # Task invocations one worker runs at once
    workflow_lease_sec: float = 30  # a dead runner's executions wait this long for another
    workflow_scan_sec: float = 1.0  # how often a worker looks for due executions (Wait ends)
    workflow_max_attempts: int = 5  # claims without a clean release before an execution fails
    workflow_max_duration_sec: float = 365 * 24 * 3600  # an execution's limit (States.Timeout)
    # Past it an execution fails (States.Runtime); Step Functions' own cap is the most
    workflow_max_history_events: int = Field(25_000, ge=10, le=25_000)

    max_functions: int = 1000  # creates beyond it: 409 quota_exceeded
    # Past it, a new version prunes the oldest versions nothing refers to
    # (store/references.py); artifact collection then frees their blobs.
    max_versions_per_function: int = Field(100, ge=2)
    canary_scan_sec: float = 1.0  # how often a worker looks for a due canary step
    # Alert rules (gateway/jobs/alerts.py)
    max_alerts: int = 1000
    alert_scan_sec: float = 1.0  # how often a worker looks for a due rule or delivery
    # How long after a window ends it is read: every worker has flushed it by then
    # (LOG_FLUSH_SEC) plus this margin for the write itself and clock skew.
    alert_settle_margin_sec: float = 1.0
    alert_webhook_timeout_sec: float = 5.0
    alert_delivery_max_attempts: int = Field(6, ge=1)
    alert_delivery_retry_base_sec: float = 2.0  # then ×2 per attempt, with jitter
    alert_history_max: int = Field(200, ge=10)  # entries kept per alert
    # NOTE(security): webhooks to loopback, private, link-local (cloud metadata) and
    # other non-public addresses are refused unless this is set (gateway/services/outbound.py).
    alert_webhook_allow_private: bool = False
    max_schedules_per_function: int = 100  # creates beyond it: 409 quota_exceeded
    # Schedules (gateway/jobs/schedules.py): every worker offers every tick; one fires it.
    schedules_enabled: bool = True  # false: this server fires no ticks (others still may)
    schedule_reload_sec: float = 60  # full reload of the schedules (changes: within ~1 s)
    schedule_misfire_grace_sec: float = 60  # a tick later than this is skipped (also at start)
    schedule_fire_threads: int = Field(4, ge=1)  # ticks offered at once per worker

    # Invocation logs, stats and metrics (gateway/telemetry/)
    log_retention_hours: float = 168  # invocation log batches older than this are deleted
    log_flush_sec: float = 0.5  # how often a worker writes the outcomes it recorded
    log_batch_max: int = 500  # outcomes waiting that make a worker flush early
    log_max_bytes_per_invocation: int = 64 * 1024  # stderr first, then stdout
    log_sweep_interval_sec: float = 3600  # one retention sweep per interval, cluster-wide
    upkeep_interval_sec: float = 60  # how often a worker looks for a sweep or fold to do
    stats_fold_after_sec: float = 600  # a worker's stats unwritten this long are folded
    # Windowed stats (telemetry/windows.py): 10 s windows kept this long, then
    # only their 1 min roll-ups, kept STATS_RETENTION_DAYS.
    stats_raw_retention_hours: float = 3
    stats_retention_days: float = 30
    stats_rollup_grace_sec: float = 300  # an hour is rolled up this long after it ends
    metrics_dir: Path | None = None  # prometheus multiprocess files; default DATA_DIR/metrics

    # Native functions: Linux binaries in Docker containers (sandbox/_docker.py).
    # `make engine` starts a local engine and prints its DOCKER_HOST.
    docker_host: str | None = None  # None: the engine's default, unix:///var/run/docker.sock
    native_image: str | None = None  # None: the image scripts/runtime-image.sh builds
    native_dir: Path | None = None  # binaries and agent sockets; default DATA_DIR/native
    native_idle_sec: float = 300  # a warm container unused this long is removed
    native_max_idle_per_function: int = 4  # warm containers per function version per worker
    native_pids_limit: int = 64
    native_tmpfs_mb: int = 16  # the function's writable /tmp
    native_cpus: float | None = 1.0  # CPU quota per container, in cores (0: none)

    build_concurrency: int = Field(1, ge=0, description="build workers per gunicorn worker")
    build_lease_sec: float = 30
    build_timeout_sec: float = 600  # one compile, killed at this age
    build_memory_mb: int = 2048  # per compiler process (RLIMIT_DATA in the build jail)
    build_max_pids: int = 512  # processes and threads of one compile (pids cgroup; 0: none)
    build_max_disk_mb: int = 1024  # what one build writes (its folder is a tmpfs; 0: none)
    toolchains_dir: Path = Path("./.cache/toolchains")  # compilers, installed by scripts/toolchains
    toolchains_auto_install: bool = True  # install a missing toolchain on a language's first build
    # Blobs (sources, artifacts) and build-cache artifacts no version uses are freed after
    # being unused this long (0: never); store/blobs.py.
    artifact_gc_grace_sec: float = 3600
    build_wait_sec: float = 300  # how long ?wait=true holds a request
    max_build_waiters: int = 8  # requests held by ?wait=true at once per worker; then 429
    build_max_attempts: int = 3
    build_poll_sec: float = 1.0
    graceful_timeout_sec: float = Field(30, ge=0)
    # A request's head (and a body ≤ 64 KiB) must arrive within this long of its
    # connection, a larger body at 16 KiB/s on average after this much grace: a client that trickles
    # bytes holds a gunicorn thread (gateway/serve.py), and THREADS × WORKERS of them
    # would leave no thread for anyone else.
    request_read_timeout_sec: float = Field(10.0, gt=0)
    console_dir: Path | None = None  # the built web console; default: console/static

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    @field_validator("rate_limit_per_key", "rate_limit_per_webhook")
    @classmethod
    def _rate_limits(cls, value: str | None) -> str | None:
        if value:
            import limits

            try:
                limits.parse_many(value)
            except ValueError as exc:
                raise ValueError(f"{exc} (e.g. '100/second;2000/minute')") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        # every webhook_url starts with it: without a scheme each would be a broken link
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("an http:// or https:// URL (the base of every webhook_url)")
        return value

    @field_validator("nimbus_store")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("file://", "s3://")):
            raise ValueError("file://PATH or s3://BUCKET/PREFIX")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Settings:
        if not self.min_memory_mb <= self.default_memory_mb <= self.max_memory_mb:
            raise ValueError(
                f"DEFAULT_MEMORY_MB ({self.default_memory_mb}) must lie between MIN_MEMORY_MB "
                f"({self.min_memory_mb}) and MAX_MEMORY_MB ({self.max_memory_mb})"
            )
        if self.default_timeout_sec > self.max_timeout_sec:
            raise ValueError(
                f"DEFAULT_TIMEOUT_SEC ({self.default_timeout_sec:g}) is over MAX_TIMEOUT_SEC "
                f"({self.max_timeout_sec:g})"
            )
        return self

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        self.data_dir = self.data_dir.resolve()
        self.toolchains_dir = self.toolchains_dir.resolve()
        if self.metrics_dir is None:
            self.metrics_dir = self.data_dir / "metrics"
        if self.native_dir is None:
            self.native_dir = self.data_dir / "native"
        self.native_dir = self.native_dir.resolve()
        if self.console_dir is None:
            import console

            self.console_dir = console.BUILT
        if self.nimbus_store is None:
            self.nimbus_store = f"file://{self.data_dir}"
        if self.public_url is None:
            self.public_url = f"http://{self.host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        if self.guest_memory_mb is None:
            self.guest_memory_mb = machine_memory_mb() * 3 // 4 // max(1, self.workers)
        if self.threads is None:
            # room for MAX_CONCURRENT running calls, the short queue of waiters,
            # and a couple of threads for everything else (health, API)
            self.threads = self.max_concurrent + self.invoke_queue_size + 2
        return self

    @property
    def store_timeouts(self) -> StoreTimeouts:
        return StoreTimeouts(
            connect_sec=self.store_connect_timeout_sec,
            read_sec=self.store_read_timeout_sec,
            attempts=self.store_attempts,
            quick_sec=self.store_quick_timeout_sec,
        )

    @property
    def uses_local_store(self) -> bool:
        return self.nimbus_store.startswith("file:")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the TOML file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# Never echoed back in a settings error: a typo in one must not print it to the log.
_SECRETS = {"nimbus_api_key", "nimbus_signing_secret", "nimbus_env_keys", "metrics_token"}


class SettingsError(ValueError):
    """A setting from the environment or nimbus.toml that Nimbus cannot run with."""


def load_settings(**overrides) -> Settings:
    """The settings, or `SettingsError` naming each bad one as the operator spells it
    (`WORKERS='two': …`), never a pydantic traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"nimbus.toml is not TOML: {exc}") from None


def describe_errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        if not field:  # a rule across settings: its message names them
            lines.append(message)
            continue
        shown = "" if field in _SECRETS else f"={error['input']!r}"
        lines.append(f"{field.upper()}{shown}: {message}")
    return "bad settings (environment or nimbus.toml):\n  " + "\n  ".join(lines)


def machine_memory_mb() -> int:
    """The memory this server may use: the machine's, or its cgroup's limit if lower."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total >> 20

"""The values the gateway passes in and gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ._docker_config import NativeConfig

MiB = 1 << 20

# DESIGN.md, handler conventions: the result (program stdout or a component's
# returned string) is capped at 6 MB, the log at 1 MB plus a truncation note.
RESULT_LIMIT_BYTES = 6 * MiB
LOG_LIMIT_BYTES = 1 * MiB

KINDS = ("module", "component", "runtime", "native")


@dataclass(frozen=True)
class SandboxConfig:
    """Per-worker sandbox settings, passed in explicitly (no environment reads)."""

    cache_dir: Path  # local disk cache of precompiled artifacts
    max_concurrent: int = 10  # guests running at once in this worker
    queue_size: int = 10  # callers allowed to wait for a slot; beyond: LimitExceeded
    queue_timeout_sec: float = 2.0  # how long a queued caller waits before LimitExceeded
    memory_cache_entries: int = 64  # in-memory LRU of deserialized modules/components
    # Threads still blocked in a host call (e.g. a component sleeping) after their
    # caller got its timeout. Bounded so they cannot starve the worker; at the
    # bound, component invocations answer LimitExceeded; at half of it the sandbox
    # asks for the process to be replaced (`Sandbox.on_stuck_threads`). None: max_concurrent.
    max_stuck_threads: int | None = None
    # Optional HMAC key for precompiled artifacts: with it, a `.cwasm` in the
    # store must carry a matching signature or it is rebuilt from the wasm.
    signing_key: bytes | None = None
    epoch_tick_sec: float = 0.01  # deadline resolution
    # Read-only cache folders the platform filled at install time (precompiled
    # shared runtimes, their unpacked mounts); looked in before compiling or
    # unpacking anything. See scripts/runtimes/.
    seed_cache_dirs: tuple[Path, ...] = ()
    # Native functions (Linux binaries in containers); None: they answer engine_unavailable.
    native: NativeConfig | None = None
    # wasmtime's pooling allocator (`_pool.py`): instance slots reserved once per
    # worker, reset copy-on-write after each call. None: wasmtime's on-demand allocator.
    pooling: bool = True
    # Slots in the pool; None: every guest that can hold an instance at once
    # (running, stuck past its deadline, idle for reuse, pre-warmed). A call that
    # finds every slot taken answers LimitExceeded (429).
    pool_instances: int | None = None
    max_memory_mb: int = 4096  # the largest memory_mb a deployment may have (a slot's size)
    # The memory_mb of the guests running at once in this worker, in all (0: no bound);
    # a guest alone always runs. Beyond it callers queue, then 429 (`_limits.py`).
    guest_memory_mb: int = 0
    pool_keep_resident_kb: int = 0  # per memory slot: reset in place, not by madvise
    # Idle instances kept for deployments that opted into reuse, in all (the least
    # recently used deployment's go first). None: max_concurrent, so a worker's
    # every concurrent call of one function can find a warm instance.
    max_idle_instances: int | None = None
    # wasm this large (bytes) compiles in a child process with parallel compilation and
    # at most compile_memory_mb; smaller compiles stay in the worker (a child costs
    # ~0.3 s to start). Small: a compile's memory grows with the wasm's code (1.2 MB of
    # empty functions took 1.7 GB), and a worker's own memory has no bound.
    child_compile_bytes: int = 64 << 10
    compile_memory_mb: int = 2048
    # Pre-warmed instances (`_prewarm.py`): fresh, never-called instances of components
    # and shared-runtime functions in use, made off the request path, one call each.
    prewarm_per_deployment: int = 1
    max_prewarmed: int | None = None  # in all; None: max_concurrent
    prewarm_idle_sec: float = 60  # a deployment not called this long loses its stock

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if self.max_concurrent < 1 or self.queue_size < 0 or self.memory_cache_entries < 1:
            raise ValueError("max_concurrent and memory_cache_entries must be ≥ 1, queue ≥ 0")

    @property
    def stuck_thread_limit(self) -> int:
        return self.max_concurrent if self.max_stuck_threads is None else self.max_stuck_threads

    @property
    def stuck_threads_to_replace(self) -> int:
        """Stuck threads at which the process should be replaced: half the bound."""
        return max(1, (self.stuck_thread_limit + 1) // 2)

    @property
    def pool_slots(self) -> int:
        if self.pool_instances is not None:
            return self.pool_instances
        # NOTE(sandbox): reused instances wait idle in slots.
        return (
            self.max_concurrent
            + self.stuck_thread_limit
            + self.idle_instance_limit
            + self.prewarm_limit
        )

    @property
    def prewarm_limit(self) -> int:
        return self.max_concurrent if self.max_prewarmed is None else self.max_prewarmed

    @property
    def idle_instance_limit(self) -> int:
        return self.max_concurrent if self.max_idle_instances is None else self.max_idle_instances


@dataclass(frozen=True)
class Mount:
    """A platform-made tar archive in the store, unpacked once per machine and
    mounted read-only at `guest_path` (e.g. a runtime's stdlib at /python)."""

    guest_path: str
    archive_key: str
    archive_sha256: str


@dataclass(frozen=True)
class Deployment:
    """One function version as the gateway knows it."""

    function_id: str
    function_name: str
    version: int
    artifact_key: str  # store key of the validated .wasm ("blobs/sha256/<hex>")
    artifact_sha256: str
    kind: str  # "module" (WASI command, program form) | "component" (the `handler` world)
    #          | "runtime" (a shared runtime component given the user's source, below)
    #          | "native" (a Linux x86-64 executable, program form, run in a container)
    env_vars: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 128
    timeout_sec: float = 30.0
    # Components only: keep the instance between calls of this version in this
    # worker (never across functions). Command modules always get a fresh one.
    reuse_instance: bool = False
    # Command modules: NIMBUS_CONTEXT (the call's context JSON) in the environment,
    # for glue the platform built. False: exactly env_vars, unless the module
    # exports `nimbus_context_env` to ask for it.
    context_env: bool = True
    # Kind "runtime" (a shared language runtime exporting the `runtime` world:
    # the artifact is that component): the user's source bundle, the entry
    # point, and read-only mounts.
    handler: str = ""
    source_key: str | None = None
    source_sha256: str | None = None
    mounts: tuple[Mount, ...] = ()


# The parts of a function's error, as answered and stored. The guest chooses their size
# (a Python exception's message can be 10 MB: that made a 21 MB 500 body, and as large
# an async invocation record).
ERROR_TYPE_CHARS = 200
ERROR_MESSAGE_CHARS = 64 * 1024
STACK_LINES = 64
STACK_LINE_CHARS = 1000


@dataclass(frozen=True)
class FunctionFailure:
    """The function failed on its own terms: the gateway answers 500 function_error.
    Every part is cut to its bound above, whoever made it."""

    type: str  # "ExitError", "StackOverflow", "Trap", or the guest's own error type
    message: str
    stack: list[str] = field(default_factory=list)
    exit_code: int | None = None

    def __post_init__(self) -> None:
        message = self.message
        if len(message) > ERROR_MESSAGE_CHARS:
            more = len(message) - ERROR_MESSAGE_CHARS
            message = f"{message[:ERROR_MESSAGE_CHARS]} …[{more} more characters]"
        stack = [line[:STACK_LINE_CHARS] for line in self.stack[:STACK_LINES]]
        object.__setattr__(self, "type", self.type[:ERROR_TYPE_CHARS] or "Error")
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "stack", stack)


@dataclass
class InvokeResult:
    output: bytes  # the result: program stdout or the component's returned string
    content_type: str  # "application/json" or "text/plain"
    logs: bytes  # guest log (capped at 1 MB plus a truncation note)
    cold_start: bool  # this worker had to load the artifact for this call
    duration_ms: float  # the guest's run: instantiate + call
    error: FunctionFailure | None = None
    init_ms: float = 0.0  # loading the artifact on a cold start (not in duration_ms)

"""`Sandbox`: the one object the gateway talks to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson
import wasmtime

from store import Store, errors

from . import _artifact
from ._compile import end_compiles
from ._component import HandlerInstance, LoadedComponent, run_handler
from ._docker import NativeExecutors
from ._module import LoadedModule, context_json, run_module
from ._outcome import TIMEOUT, Outcome, to_result
from ._pool import is_exhausted
from ._runtime_world import RUN, check_source, runtime_call
from ._threads import Abandoned
from ._types import KINDS, Deployment, InvokeResult, MiB, SandboxConfig
from ._worker import Prepared, Worker, current_pid, deployment_key

# How long past the deadline a caller waits for the epoch trap to land
# before leaving a guarded thread behind.
_GRACE_SEC = 0.25

# What a pre-warmed instance's `load` is told: the function's, never a caller's.
_LOAD_CONTEXT = ("function_name", "version", "memory_limit_mb")

_STATS = ("running", "slots", "queued", "stuck_threads", "idle_instances",
          "prewarmed_instances", "cached_artifacts", "cache_hits", "cache_misses",
          "native_lanes")  # fmt: skip


class Sandbox:
    """Runs untrusted WASM for one worker process, fast and within hard limits.

    Makes its wasmtime Engine on first use, after gunicorn's fork (never at
    import or construction), and makes a new one if used in a forked child.
    Errors raised by `invoke` (all from `store.errors`) carry `logs`,
    `duration_ms` and `cold_start` attributes when a guest ran:
    `Timeout` at the deadline, `LimitExceeded` when the worker is full,
    `NimbusError` with code `memory_limit_exceeded` or `result_too_large`.
    A function's own failure is not raised: it is `InvokeResult.error`.

    `on_stuck_threads(stuck)` is called (on the caller's thread) when guest
    threads blocked past their deadline reach half of `max_stuck_threads`
    (at the bound, components answer `LimitExceeded`): a thread blocked for
    good returns only when the process ends, so the process model should
    replace this process (gateway/serve.py does, draining first).
    """

    def __init__(self, store: Store, config: SandboxConfig) -> None:
        self._store = store
        self._config = config
        self._lock = threading.Lock()
        self._worker_state: Worker | None = None
        self._native = NativeExecutors(store, config.native)  # kind "native": containers
        self.on_stuck_threads: Callable[[int], None] | None = None

    def _worker(self) -> Worker:
        worker = self._worker_state
        if worker is not None and worker.pid == current_pid():
            return worker
        with self._lock:
            worker = self._worker_state
            if worker is None or worker.pid != current_pid():
                # A forked child must not touch its parent's engine, threads or locks.
                worker = self._worker_state = Worker(
                    self._store, self._config, self._too_many_stuck
                )
            return worker

    def _too_many_stuck(self, stuck: int) -> None:
        if self.on_stuck_threads is not None:
            self.on_stuck_threads(stuck)

    def start(self) -> None:
        """Make the engine and the WASI linker now (e.g. in gunicorn's post_fork)
        instead of on the first invoke."""
        self._worker().host.module_linker()

    def close(self) -> None:
        """Close the executors; a compile still running in a child (a build's precompile)
        is killed, so nothing of this worker outlives it."""
        self._native.close()
        worker, self._worker_state = self._worker_state, None
        if worker is not None and worker.pid == current_pid():
            end_compiles()
            worker.close()

    def stats(self) -> dict[str, int]:
        """This process's numbers: guests running now, of how many slots, callers
        queued for one, threads stuck past their deadline, idle reusable
        instances, artifacts in the memory cache, the cache's hits and misses
        (loads that had to go to disk, store or wasm) since the engine was made,
        1 if guarded guest calls run on native lanes (`_native/liblane.so`, else
        Python threads), and the native executor's containers (`native_idle`,
        `native_busy`, `native_started`)."""
        native = self._native.stats()
        worker = self._worker_state
        if worker is None or worker.pid != current_pid():
            return dict.fromkeys(_STATS, 0) | native
        return native | {
            "running": worker.gate.active,
            "slots": worker.gate.max_concurrent,
            "queued": worker.gate.waiting,
            "stuck_threads": worker.threads.stuck,
            "idle_instances": worker.idle_instances(),
            "prewarmed_instances": worker.warm.count,
            "cached_artifacts": worker.artifacts.entries,
            "cache_hits": worker.artifacts.hits,
            "cache_misses": worker.artifacts.misses,
            "native_lanes": int(worker.threads.lanes is not None),
        }

    # -- artifacts ------------------------------------------------------------

    def kind_of(self, wasm: bytes) -> str:
        """ "module" or "component" from the binary header; `errors.Invalid` otherwise."""
        return _artifact.kind_of(wasm)

    def precompile(self, artifact_key: str, sha256: str) -> str:
        """Compile the stored wasm for this engine and store it beside; returns its key.

        Checks the wasm against `sha256` first; idempotent (a present,
        complete precompiled artifact is left alone). `errors.Invalid` for
        wasm that does not compile or is not a WASI command / handler component.
        """
        return self._worker().artifacts.precompile(artifact_key, sha256)

    def prepare(self, dep: Deployment) -> None:
        """Warm a deployment: artifact loaded and linked, per-call pieces encoded."""
        self._check_deployment(dep)
        if dep.kind == "native":
            return self._native.prepare(dep)
        worker = self._worker()
        worker.artifacts.load(dep.artifact_key, dep.artifact_sha256, _file_kind(dep))
        worker.prepared(dep)
        if dep.kind in ("component", "runtime"):
            worker.host.component_linker()

    def check(self, dep: Deployment) -> str:
        """A runtime deployment's `check`: validate the user's source in the runtime's
        own interpreter, running none of it. Returns the runtime's facts (JSON text);
        `errors.Invalid` with the user-facing message (and stack lines) otherwise."""
        self._check_deployment(dep)
        if dep.kind != "runtime":
            raise errors.Invalid("only runtime deployments have a source to check")
        worker = self._worker()
        loaded, _ = worker.artifacts.load(dep.artifact_key, dep.artifact_sha256, "component")
        return check_source(worker, dep, loaded, worker.prepared(dep))

    def _check_deployment(self, dep: Deployment) -> None:
        _check_deployment(dep, self._config.max_memory_mb)

    # -- invoke ---------------------------------------------------------------

    def invoke(self, dep: Deployment, event: bytes, context: dict) -> InvokeResult:
        self._check_deployment(dep)
        worker = self._worker()
        if dep.kind == "native":
            return self._native.invoke(dep, event, context, worker.gate)
        began = time.perf_counter()
        loaded, cold = worker.artifacts.load(dep.artifact_key, dep.artifact_sha256, _file_kind(dep))
        init_ms = (time.perf_counter() - began) * 1000 if cold else 0.0
        prepared = worker.prepared(dep)
        if dep.kind in ("component", "runtime"):
            worker.threads.check_capacity()
        worker.gate.acquire(dep.memory_mb, dep.function_id)
        try:
            if isinstance(loaded, LoadedModule):
                outcome = run_module(
                    worker.host.engine,
                    loaded,
                    prepared.wasi_args,
                    event,
                    memory_bytes=dep.memory_mb * MiB,
                    timeout_sec=dep.timeout_sec,
                    deadline_ticks=worker.host.deadline_ticks(dep.timeout_sec),
                    guest_context=(
                        context_json(dep, context)
                        if dep.context_env or loaded.asks_for_context
                        else None
                    ),
                )
            else:
                outcome = self._call_component(worker, dep, loaded, prepared, event, context)
        finally:
            worker.gate.release(dep.memory_mb, dep.function_id)
        return to_result(dep, outcome, cold, init_ms)

    def _call_component(
        self,
        worker: Worker,
        dep: Deployment,
        loaded: LoadedComponent,
        prepared: Prepared,
        event: bytes,
        context: dict,
    ) -> Outcome:
        try:
            event_text = event.decode()
        except UnicodeDecodeError:
            raise errors.Invalid("the event must be UTF-8 text (JSON)") from None
        full_context = {
            "function_name": dep.function_name,
            "version": dep.version,
            "memory_limit_mb": dep.memory_mb,
            **context,
            # The sandbox enforces the deadline, so it states it.
            "deadline_ms": int((time.time() + dep.timeout_sec) * 1000),
        }
        context_text = orjson.dumps(full_context, default=str).decode()
        ticks = worker.host.deadline_ticks(dep.timeout_sec)
        code = prepared.code

        def new() -> HandlerInstance:
            return HandlerInstance(
                worker.host.engine,
                worker.host.component_linker(),
                loaded,
                prepared.argv,
                dep.env_vars,
                dep.memory_mb * MiB,
                ticks,
                **runtime_call(RUN, code),
            )

        def prewarmed() -> HandlerInstance:
            inst = new()
            if loaded.preloads:  # the function's code loaded too, under its own limits
                # NOTE(sandbox): nothing of this caller's context: a later caller gets it.
                load_context = {key: full_context[key] for key in _LOAD_CONTEXT}
                load_context["deadline_ms"] = int((time.time() + dep.timeout_sec) * 1000)
                inst.preload(orjson.dumps(load_context).decode(),
                             worker.host.deadline_ticks(dep.timeout_sec))  # fmt: skip
            return inst

        # A warm instance of this version if it opted into reuse; otherwise a
        # pre-warmed fresh one (never called), when one is ready.
        if dep.reuse_instance:
            reuse = worker.take_idle(dep)
        else:
            reuse = worker.warm.take(deployment_key(dep), prewarmed)
        in_use: list[HandlerInstance] = [reuse] if reuse is not None else []

        def make_instance() -> HandlerInstance:
            try:
                inst = new()
            except wasmtime.WasmtimeError as exc:
                # Idle reusable instances hold pool slots: give them up before a 429.
                if not (is_exhausted(str(exc)) and worker.drop_idle()):
                    raise
                inst = new()
            in_use.append(inst)
            return inst

        started = time.perf_counter()
        wait_sec = dep.timeout_sec + _GRACE_SEC
        lanes = worker.threads.lanes
        try:
            if reuse is not None and lanes is not None:
                # PERF(sandbox): an instance already made needs only the call guarded:
                # it runs on a native lane, everything else stays on this thread.
                def via(call: tuple[int, ...], late: Callable[[int | None], None]) -> int | None:
                    def returned(value: int | None, inst: HandlerInstance = reuse) -> None:
                        late(value)
                        inst.close()  # a call past its deadline: never reused

                    return worker.threads.run_native(lanes.func_call, call, wait_sec, returned)

                outcome, keep = run_handler(make_instance, reuse, event_text, context_text,
                                            ticks, via)  # fmt: skip
            else:
                outcome, keep = worker.threads.run(
                    lambda: run_handler(make_instance, reuse, event_text, context_text, ticks),
                    wait_sec,
                )
        except Abandoned:
            # Still blocked in a host call; its thread is counted as stuck. What it
            # logged so far can be read without disturbing it.
            if not dep.reuse_instance:
                worker.warm.wake()
            logs = in_use[0].logs.take() if in_use else b""
            return Outcome(TIMEOUT, logs=logs, duration_ms=(time.perf_counter() - started) * 1000)
        if keep is not None:
            if dep.reuse_instance:
                worker.give_back(dep, keep)
            else:
                worker.warm.discard(keep)
        elif not dep.reuse_instance:
            worker.warm.wake()
        return outcome


def _file_kind(dep: Deployment) -> str:
    """What the artifact is: a runtime deployment's is the shared runtime component."""
    return "component" if dep.kind == "runtime" else dep.kind


def _check_deployment(dep: Deployment, max_memory_mb: int) -> None:
    if dep.kind not in KINDS:
        raise errors.Invalid(f"unknown artifact kind {dep.kind!r} (expected one of {KINDS})")
    if dep.memory_mb <= 0 or dep.timeout_sec <= 0:
        raise errors.Invalid("memory_mb and timeout_sec must be positive")
    if dep.memory_mb > max_memory_mb:
        raise errors.Invalid(f"memory_mb is over this sandbox's maximum of {max_memory_mb}")

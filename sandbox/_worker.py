"""What one worker process owns: the engine, caches, admission and guarded threads.

`Sandbox` makes one per process, after the fork; a forked child makes its
own and never touches its parent's.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from store import Store

from ._cache import ArtifactCache
from ._component import HandlerInstance
from ._engine import EngineHost
from ._limits import ConcurrencyGate
from ._module import WasiArgs
from ._pool import PoolSize
from ._prewarm import WarmStock
from ._runtime_world import MountCache, RuntimeCode, runtime_code
from ._threads import GuestThreads
from ._types import Deployment, SandboxConfig

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    """This process's id. PERF(sandbox): checked on every call (a forked child must make
    its own Worker), so without a getpid() system call each time."""
    return _pid


@dataclass
class Prepared:
    """Per deployment: what is encoded once and reused by every call."""

    argv: list[str]
    wasi_args: WasiArgs | None
    code: RuntimeCode | None = None  # kind "runtime": source, handler, mounts


class Worker:
    """What one process owns: the engine, the caches, admission, guarded threads."""

    def __init__(
        self,
        store: Store,
        config: SandboxConfig,
        on_stuck_threads: Callable[[int], None] | None = None,
    ) -> None:
        self.pid = current_pid()
        pool = (
            PoolSize(config.pool_slots, config.max_memory_mb, config.pool_keep_resident_kb * 1024)
            if config.pooling
            else None
        )
        self.host = EngineHost(config.epoch_tick_sec, pool)
        self.artifacts = ArtifactCache(
            store,
            self.host,
            config.cache_dir,
            config.memory_cache_entries,
            config.signing_key,
            config.seed_cache_dirs,
            config.child_compile_bytes,
            config.compile_memory_mb,
        )
        self.store = store
        self.mounts = MountCache(store, config.cache_dir, config.seed_cache_dirs)
        self.gate = ConcurrencyGate(
            config.max_concurrent,
            config.queue_size,
            config.queue_timeout_sec,
            config.guest_memory_mb,
        )
        self.threads = GuestThreads(
            config.stuck_thread_limit, config.stuck_threads_to_replace, on_stuck_threads
        )
        self._lock = threading.Lock()
        self._limit = config.memory_cache_entries * 4
        self._prepared: OrderedDict[tuple, Prepared] = OrderedDict()
        self._idle: OrderedDict[tuple, list[HandlerInstance]] = OrderedDict()
        self._idle_limit = config.idle_instance_limit
        self.warm = WarmStock(
            config.prewarm_per_deployment,
            config.prewarm_limit,
            config.prewarm_idle_sec,
            slots=config.pool_slots,
            slots_taken=lambda: self.gate.active + self.threads.stuck + self.idle_instances(),
        )

    def prepared(self, dep: Deployment) -> Prepared:
        key = deployment_key(dep)
        with self._lock:
            found = self._prepared.get(key)
            if found is not None:
                self._prepared.move_to_end(key)
                return found
        argv = [dep.function_name]
        wasi_args = WasiArgs(argv, dep.env_vars) if dep.kind == "module" else None
        code = runtime_code(self.store, self.mounts, dep) if dep.kind == "runtime" else None
        found = Prepared(argv, wasi_args, code)
        with self._lock:
            self._prepared[key] = found
            while len(self._prepared) > self._limit:
                self._prepared.popitem(last=False)
        return found

    def idle_instances(self) -> int:
        with self._lock:
            return sum(len(insts) for insts in self._idle.values())

    def take_idle(self, dep: Deployment) -> HandlerInstance | None:
        key = deployment_key(dep)
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def give_back(self, dep: Deployment, inst: HandlerInstance) -> None:
        key = deployment_key(dep)
        evicted: list[HandlerInstance] = []
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            idle.append(inst)
            total = sum(len(insts) for insts in self._idle.values())
            while total > self._idle_limit:  # the least recently used deployment's first
                oldest = next(iter(self._idle.values()))
                evicted.append(oldest.pop(0))
                total -= 1
                if not oldest:
                    self._idle.popitem(last=False)
        for old in evicted:
            old.close()

    def drop_idle(self) -> int:
        """Close every idle reusable and pre-warmed instance (freeing their pool slots);
        how many."""
        with self._lock:
            idle = [inst for insts in self._idle.values() for inst in insts]
            self._idle.clear()
        for inst in idle:
            inst.close()
        return len(idle) + self.warm.drop_all()

    def close(self) -> None:
        self.warm.close()
        self.host.close()
        self.drop_idle()


def deployment_key(dep: Deployment) -> tuple:
    """Everything a prepared deployment or a reused instance was made from."""
    # PERF(sandbox): three lookups per call; the gateway keeps one Deployment per
    # version, so the key is made once and kept on it (a frozen dataclass).
    key = dep.__dict__.get("_key")
    if key is None:
        key = (
            dep.function_id,
            dep.version,
            dep.artifact_sha256,
            dep.function_name,
            dep.memory_mb,
            tuple(dep.env_vars.items()),
            dep.source_sha256,
            dep.handler,
            dep.mounts,
        )
        object.__setattr__(dep, "_key", key)
    return key

"""The worker's one wasmtime Engine: fixed configuration, epoch ticker, fingerprint.

NOTE(sandbox): an Engine made before fork() hangs the child when it compiles
(FIELD-NOTES.md), so nothing here runs at import time; `Sandbox` makes an
`EngineHost` on first use and makes a new one if it finds itself in a new
process.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import wasmtime

from . import _lanes
from ._capi import holding_gil
from ._pool import PoolSize, use_pooling

log = logging.getLogger("nimbus.sandbox")

# Everything that changes generated code or what a precompiled artifact
# expects of its engine; hashed into the precompiled key.
ENGINE_SETTINGS: dict[str, object] = {
    "epoch_interruption": True,  # deadlines: a ticker bumps the epoch
    "consume_fuel": False,  # no metering: epochs are cheaper
    "wasm_threads": False,  # no shared memory, no atomic waits that block
    "wasm_component_model": True,
    "cranelift_opt_level": "speed",
    "max_wasm_stack": 512 * 1024,  # deep recursion traps with a stack overflow
    "strategy": "cranelift",
}

# x86 features Cranelift selects code by; other flags in /proc/cpuinfo (bugs,
# virtualisation hints) would only split the cache without changing the code.
_X86_CODEGEN_FLAGS = frozenset(
    [
        "sse3",
        "pni",
        "ssse3",
        "sse4_1",
        "sse4_2",
        "popcnt",
        "avx",
        "avx2",
        "bmi1",
        "bmi2",
        "fma",
        "abm",
        "lzcnt",
        "f16c",
        "cx16",
        "avx512f",
        "avx512vl",
        "avx512dq",
        "avx512bw",
        "avx512cd",
        "avx512vbmi",
        "avx512bitalg",
        "avx512_vbmi2",
        "avx512_vnni",
        "avx512_vpopcntdq",
    ]
)


@dataclass(frozen=True)
class Fingerprint:
    """What a precompiled artifact must match to be loaded by this engine."""

    wasmtime_version: str
    config_hash: str
    cpu_hash: str

    @property
    def tag(self) -> str:
        return f"wasmtime-{self.wasmtime_version}-{self.config_hash}-{self.cpu_hash}"


def _cpu_features() -> str:
    machine = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() in ("flags", "Features"):
                    flags = set(value.split())
                    if machine in ("x86_64", "AMD64", "i686"):
                        flags &= _X86_CODEGEN_FLAGS
                    return f"{machine}:{' '.join(sorted(flags))}"
    except OSError:
        pass
    return f"{machine}:{platform.processor()}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _wasmtime_version() -> str:
    # PERF(sandbox): importlib.metadata scans every distribution (~5 ms, on the
    # first invoke); the dist-info folder beside the package says the same.
    site = Path(wasmtime.__file__).resolve().parent.parent
    found = [
        name
        for name in os.listdir(site)
        if name.startswith("wasmtime-") and name.endswith(".dist-info")
    ]
    if len(found) == 1:
        return found[0].removeprefix("wasmtime-").removesuffix(".dist-info")
    return importlib.metadata.version("wasmtime")


@cache
def fingerprint() -> Fingerprint:
    return Fingerprint(
        wasmtime_version=_wasmtime_version(),
        config_hash=_short_hash(json.dumps(ENGINE_SETTINGS, sort_keys=True)),
        cpu_hash=_short_hash(_cpu_features()),
    )


def engine_tag() -> str:
    """Where this engine's precompiled artifacts are filed (`<cache dir>/<tag>/<wasm sha>/`)."""
    return fingerprint().tag


# NOTE(sandbox): wasmtime compiles on a process-global rayon thread pool. A
# child forked after that pool started inherits its state but not its threads,
# and any compile in the child waits forever (the "fork() trap" of
# FIELD-NOTES.md: it is the pool, not the Engine). A child forked from a
# process that made an engine therefore compiles on its own thread. This does
# not change generated code, so it is not part of the fingerprint.
_process = {"made_engine": False, "forked_after_engine": False}


def _after_fork_in_child() -> None:
    if _process["made_engine"]:
        _process["forked_after_engine"] = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def make_config(pool: PoolSize | None = None) -> wasmtime.Config:
    """The engine's configuration; with `pool`, instances come from the pooling allocator."""
    config = wasmtime.Config()
    for name, value in ENGINE_SETTINGS.items():
        setattr(config, name, value)
    config.parallel_compilation = not _process["forked_after_engine"]
    if pool is not None:
        use_pooling(config, pool)
    return config


class EngineHost:
    """One Engine, its epoch ticker thread and the linkers bound to it."""

    def __init__(self, tick_sec: float, pool: PoolSize | None = None) -> None:
        if _process["forked_after_engine"]:
            log.warning(
                "wasmtime was used before this process was forked: compiling on one thread, "
                "and WASI preview 2 timers (a component's sleep) may never fire here; "
                "make the Sandbox's engine after the fork"
            )
        self.tick_sec = tick_sec
        self.pool = pool
        self.engine = wasmtime.Engine(make_config(pool))
        _process["made_engine"] = True
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="nimbus-epoch", daemon=True)
        self._ticker.start()
        self._lock = threading.Lock()
        self._module_linker: wasmtime.Linker | None = None
        self._component_linker = None
        # Modules linked to this engine run through it when built (`_module.py`).
        self.native = _lanes.module_helpers()

    def _tick(self) -> None:
        # NOTE(sandbox): the epoch follows the wall clock: a ticker that wakes
        # late (a busy machine, a GIL-heavy thread) catches up, so a deadline of
        # N ticks is never much later than N * tick_sec.
        engine_ptr = self.engine.ptr()
        # PERF(sandbox): an atomic add: with the GIL kept, a tick costs one GIL
        # hand-off instead of two (see _capi.py).
        increment = holding_gil("wasmtime_engine_increment_epoch")
        started, ticks = time.monotonic(), 0
        while not self._stop.wait(self.tick_sec):
            due = int((time.monotonic() - started) / self.tick_sec)
            while ticks < due:
                increment(engine_ptr)
                ticks += 1

    def deadline_ticks(self, seconds: float) -> int:
        """Epoch ticks from now until `seconds` have surely passed (one tick of slack)."""
        return max(1, math.ceil(seconds / self.tick_sec)) + 1

    def module_linker(self) -> wasmtime.Linker:
        if self._module_linker is None:
            with self._lock:
                if self._module_linker is None:
                    from ._wasi import make_module_linker

                    fd_write = self.native.fd_write if self.native is not None else None
                    self._module_linker = make_module_linker(self.engine, fd_write)
        return self._module_linker

    def component_linker(self):
        # PERF(sandbox): add_wasip2 costs ~30 ms; workers that only run modules never pay it.
        if self._component_linker is None:
            with self._lock:
                if self._component_linker is None:
                    from wasmtime import component

                    linker = component.Linker(self.engine)
                    linker.add_wasip2()
                    self._component_linker = linker
        return self._component_linker

    def close(self) -> None:
        self._stop.set()

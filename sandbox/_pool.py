"""wasmtime's pooling instance allocator, sized from the sandbox's settings.

PERF(sandbox): with the default on-demand allocator every instance maps a
fresh multi-GiB reservation per linear memory, faults its pages in and
unmaps them again when the store is dropped; under concurrency that kernel
work (page-table set-up and teardown, TLB shootdowns across threads)
dominated a Python call. The pooling allocator reserves every slot once, at
engine creation, and a slot's memory is reset after use with madvise over
the copy-on-write image of the module's initial memory (a `.cwasm` maps its
image straight from the file), so an instantiation maps nothing.

wasmtime-py has no `Config` method for it; the C API does
(`wasmtime_pooling_allocation_*`). The pool's sizes are not part of the
engine fingerprint: they change where instances live, never the generated
code, so a precompiled artifact loads into engines with any pool size.

An exhausted pool (every slot in use) fails instantiation with wasmtime's
"maximum concurrent … limit … reached"; `is_exhausted` recognises it, and
the sandbox answers `LimitExceeded` (429) and keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime
from wasmtime import _bindings as raw

from store import errors

MiB = 1 << 20

# What one component instance may hold; a component over these limits fails its
# deploy with the limit named. The shared runtimes need (a pool that refused more
# said so): Python 14 core instances and 1 memory, JavaScript fewer.
# NOTE(security): a store's memory limit applies to each linear memory, so one
# memory per component is what makes memory_mb an invocation's total (with 2, a
# component growing both held 30 MiB under memory_mb=16; it was 8 without the
# pool). Every component seen (both shared runtimes, componentize-py, WAT) has one.
CORE_INSTANCES_PER_COMPONENT = 32
MEMORIES_PER_COMPONENT = 1
TABLES_PER_COMPONENT = 16
TABLES_PER_MODULE = 4
# CPython's function table holds ~20k elements; a table element is 8 bytes of
# reserved (not resident) address space per slot.
TABLE_ELEMENTS = 1_000_000
# vmctx sizes (globals, function references): CPython's core module needs ~0.5 MiB.
CORE_INSTANCE_BYTES = 4 * MiB
COMPONENT_INSTANCE_BYTES = 1 * MiB
# A table slot kept resident between calls: CPython's ~20k elements fit.
TABLE_KEEP_RESIDENT = 256 * 1024


@dataclass(frozen=True)
class PoolSize:
    """How many instances run (or wait warm) at once, and how large one may be."""

    instances: int  # component instances and command-module instances alike
    max_memory_mb: int  # the largest memory_mb a deployment may ask for
    keep_resident_bytes: int  # per memory: reset by memset, not returned to the kernel

    @property
    def memories(self) -> int:
        return self.instances * MEMORIES_PER_COMPONENT


_FIELDS = {
    "total_component_instances": lambda p: p.instances,
    "total_core_instances": lambda p: p.instances * CORE_INSTANCES_PER_COMPONENT,
    "total_memories": lambda p: p.memories,
    "total_tables": lambda p: p.instances * TABLES_PER_COMPONENT,
    "total_stacks": lambda p: 0,  # no async calls
    "max_core_instances_per_component": lambda p: CORE_INSTANCES_PER_COMPONENT,
    "max_memories_per_component": lambda p: MEMORIES_PER_COMPONENT,
    "max_tables_per_component": lambda p: TABLES_PER_COMPONENT,
    "max_memories_per_module": lambda p: 1,
    "max_tables_per_module": lambda p: TABLES_PER_MODULE,
    "table_elements": lambda p: TABLE_ELEMENTS,
    "max_memory_size": lambda p: p.max_memory_mb * MiB,
    "max_core_instance_size": lambda p: CORE_INSTANCE_BYTES,
    "max_component_instance_size": lambda p: COMPONENT_INSTANCE_BYTES,
    "linear_memory_keep_resident": lambda p: p.keep_resident_bytes,
    "table_keep_resident": lambda p: min(p.keep_resident_bytes, TABLE_KEEP_RESIDENT),
    # A slot last used by the same module keeps its image mapped: prefer it.
    "max_unused_warm_slots": lambda p: p.instances,
}


def use_pooling(config: wasmtime.Config, size: PoolSize) -> None:
    """Switch `config` (before its Engine is made) to the pooling allocator."""
    pool = raw.wasmtime_pooling_allocation_config_new()
    try:
        for name, value in _FIELDS.items():
            getattr(raw, f"wasmtime_pooling_allocation_config_{name}_set")(pool, value(size))
        raw.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)
    finally:
        raw.wasmtime_pooling_allocation_config_delete(pool)


def is_exhausted(message: str) -> bool:
    """wasmtime's error for a pool with no free slot of some kind."""
    lower = message.lower()
    return "maximum concurrent" in lower and "reached" in lower


def exceeds_pool_limits(message: str) -> bool:
    """wasmtime's refusal of an artifact larger than a pool slot (checked at load)."""
    return "in the pooling allocator" in message


def busy() -> errors.LimitExceeded:
    return errors.LimitExceeded("worker busy: every sandbox slot is in use", retry_after=1)

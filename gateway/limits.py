"""The platform's size limits, defined once each, and the per-runtime limits the registry implies.

Code sizes follow from a runtime's kind, so the registry's package defines them
(`compiler`, whose builders check a native binary too); the result cap is the
sandbox's, which enforces it. Both are re-exported here with the event limits,
so the gateway reads every limit from this one module.
"""

from __future__ import annotations

from compiler import BINARY_LIMIT, RUNTIMES, SOURCE_LIMIT, Runtime
from sandbox import RESULT_LIMIT_BYTES

from .settings import Settings

KiB, MiB = 1024, 1024 * 1024

EVENT_LIMIT = 6 * MiB  # a sync invoke's or webhook's body
ASYNC_EVENT_LIMIT = 256 * KiB  # an async invoke's event (it is stored); a schedule's too
RESULT_LIMIT = RESULT_LIMIT_BYTES  # 6 MB; the sandbox enforces it (502 result_too_large)
# An execution's input and each state's input or output (Step Functions' 256 KB).
WORKFLOW_PAYLOAD_LIMIT = 256 * KiB

__all__ = [
    "ASYNC_EVENT_LIMIT",
    "BINARY_LIMIT",
    "EVENT_LIMIT",
    "RESULT_LIMIT",
    "SOURCE_LIMIT",
    "WORKFLOW_PAYLOAD_LIMIT",
    "code_size_limit",
    "memory_floor",
    "memory_floors",
]


def code_size_limit(runtime: Runtime) -> int:
    return runtime.code_size_limit


def memory_floor(runtime: Runtime, settings: Settings) -> int:
    """The least memory a function of this runtime may have (its interpreter's pages)."""
    return max(runtime.memory_floor_mb or 0, settings.min_memory_mb)


def memory_floors(settings: Settings) -> dict[str, int]:
    return {runtime.name: memory_floor(runtime, settings) for runtime in RUNTIMES}

"""The platform's size limits, defined once, and the per-runtime limits the registry implies."""

from __future__ import annotations

from compiler import RUNTIMES, Runtime
from sandbox import RESULT_LIMIT_BYTES

from .settings import Settings

KiB, MiB = 1024, 1024 * 1024

SOURCE_LIMIT = 512 * KiB  # decoded source of one version (code or files)
BINARY_LIMIT = 50 * MiB  # an uploaded wasm or native artifact
EVENT_LIMIT = 6 * MiB  # a sync invoke's or webhook's body
ASYNC_EVENT_LIMIT = 256 * KiB  # an async invoke's event (it is stored)
RESULT_LIMIT = RESULT_LIMIT_BYTES  # 6 MB; the sandbox enforces it (502 result_too_large)


def code_size_limit(runtime: Runtime) -> int:
    return BINARY_LIMIT if runtime.kind == "binary" else SOURCE_LIMIT


def memory_floor(runtime: Runtime, settings: Settings) -> int:
    """The least memory a function of this runtime may have (its interpreter's pages)."""
    return max(runtime.memory_floor_mb or 0, settings.min_memory_mb)


def memory_floors(settings: Settings) -> dict[str, int]:
    return {runtime.name: memory_floor(runtime, settings) for runtime in RUNTIMES}

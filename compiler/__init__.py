"""Turning source into artifacts: one builder per runtime behind one protocol.

Adding a language is adding one module under `compiler/runtimes/` and one
line in `_BUILDERS` (a builder is made from the server's `BuildConfig`).

Public surface: `builder_for`, the protocol's types (`Builder`,
`BuildRequest`, `BuildResult`, `BuildLog`, `BuildFailed`, `BuildConfig`),
`BuildCache` (finished builds by what they were made from),
`ArtifactCollector` (deletes compiled artifacts no version uses),
`runtime_cache_dirs` (the shared runtimes' seed cache folders) and
`runtimes_with_toolchains` (what `python -m compiler install-toolchains` installs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ._base import BuildConfig, Builder, BuildFailed, BuildLog, BuildRequest, BuildResult
from ._buildcache import BuildCache, CachedBuild
from ._collect import ArtifactCollector
from .runtimes import javascript, python_runtime
from .runtimes.c import CBuilder
from .runtimes.go import GoBuilder
from .runtimes.javascript import JavaScriptBuilder
from .runtimes.native import NativeBuilder
from .runtimes.python import PythonBuilder
from .runtimes.rust import RustBuilder
from .runtimes.wasm import WasmBuilder

_BUILDERS: dict[str, Callable[[BuildConfig], Builder]] = {
    "wasm": lambda config: WasmBuilder(),
    "native": lambda config: NativeBuilder(),
    "c": CBuilder,
    "go": GoBuilder,
    "python": PythonBuilder,
    "javascript": JavaScriptBuilder,
    "rust": RustBuilder,
}


def builder_for(runtime: str, config: BuildConfig | None = None) -> Builder:
    try:
        make = _BUILDERS[runtime]
    except KeyError:
        raise BuildFailed(
            f"the {runtime} runtime has no builder on this server yet; "
            "upload a ready WebAssembly artifact with runtime 'wasm' instead"
        ) from None
    return make(config or BuildConfig())


def runtime_cache_dirs() -> tuple[Path, ...]:
    """Sandbox cache folders the install scripts filled for the shared language runtimes
    (precompiled components, unpacked stdlib): servers read them as seeds."""
    return (python_runtime.SEED_CACHE_DIR,)


def runtime_components() -> list[str]:
    """sha256 of each installed shared runtime component (workers preload them)."""
    found = (python_runtime.installed(), javascript.installed())
    return [runtime.wasm_sha256 for runtime in found if runtime is not None and runtime.wasm_sha256]


def runtimes_with_toolchains() -> list[str]:
    """The runtimes whose builder installs a toolchain (has `prepare`)."""
    return [runtime for runtime, make in _BUILDERS.items() if hasattr(make, "prepare")]


__all__ = [
    "ArtifactCollector",
    "BuildCache",
    "BuildConfig",
    "BuildFailed",
    "BuildLog",
    "BuildRequest",
    "BuildResult",
    "Builder",
    "CachedBuild",
    "builder_for",
    "runtime_cache_dirs",
    "runtime_components",
    "runtimes_with_toolchains",
]

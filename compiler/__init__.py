"""Turning source into artifacts: one builder per runtime behind one protocol.

Adding a language is adding one module under `compiler/runtimes/` and one
entry in the runtime registry (`compiler/registry.py`: name, aliases,
extension, default handler, memory floor, ... and the builder, made from the
server's `BuildConfig`).

Public surface: `parse_build_errors` (a failed build's errors as
`{file, line, column, message}`; `with_python_column` puts a Python syntax error's caret
column into the runtime check's words), the registry (`RUNTIMES`, `Runtime`, `RuntimeRegistry`),
`builder_for`, the protocol's types (`Builder`,
`BuildRequest`, `BuildResult`, `BuildLog`, `BuildFailed`, `BuildConfig`),
`BuildCache` (finished builds by what they were made from; its records and
their collection are store's: `store.buildcache`, `store.collect`),
`runtime_cache_dirs` (the shared runtimes' seed cache folders) and
`runtimes_with_toolchains` (what `python -m compiler install-toolchains` installs),
`SOURCE_LIMIT` / `BINARY_LIMIT` (code sizes, by a runtime's kind),
`file_names_problem` (what a function's file names may not be),
`requirement_problem` (what a Python requirement may not be),
`bounded_folder` (a build folder as a size-limited tmpfs: BUILD_MAX_DISK_MB),
`release_orphans` (unmounts those of workers killed mid-build) and `abandon_build`
(a stopping worker ends a running build's processes and unmounts its folder).
"""

from __future__ import annotations

from pathlib import Path

from store.collect import ArtifactCollector
from store.records import CachedBuild

from ._base import BuildConfig, Builder, BuildFailed, BuildLog, BuildRequest, BuildResult
from ._buildcache import BuildCache
from ._jail import end_jails
from ._limits import BINARY_LIMIT, SOURCE_LIMIT
from ._scratch import bounded_folder, release, release_orphans
from ._sources import file_names_problem
from .diagnostics import BuildError, parse_build_errors, with_python_column
from .registry import RUNTIMES, Runtime, RuntimeRegistry
from .runtimes import javascript, python_runtime
from .runtimes.python import requirement_problem


def builder_for(runtime: str, config: BuildConfig | None = None) -> Builder:
    found = RUNTIMES.get(runtime)
    if found is None:
        raise BuildFailed(
            f"the {runtime} runtime has no builder on this server; "
            "upload a ready WebAssembly artifact with runtime 'wasm' instead"
        )
    return found.builder(config or BuildConfig())


def abandon_build(folder: Path) -> tuple[int, int]:
    """End what a build still runs in `folder` (its jailed processes, killed) and unmount
    its bounded folders; the build's own code then fails on its own. For a server that
    stops mid-build and has handed the build back: nothing of it may outlive the server.
    Returns (jails killed, folders unmounted)."""
    return end_jails(folder), len(release(folder))


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
    return [runtime.name for runtime in RUNTIMES if hasattr(runtime.builder, "prepare")]


__all__ = [
    "BINARY_LIMIT",
    "RUNTIMES",
    "SOURCE_LIMIT",
    "ArtifactCollector",
    "BuildCache",
    "BuildConfig",
    "BuildError",
    "BuildFailed",
    "BuildLog",
    "BuildRequest",
    "BuildResult",
    "Builder",
    "CachedBuild",
    "Runtime",
    "RuntimeRegistry",
    "abandon_build",
    "bounded_folder",
    "builder_for",
    "file_names_problem",
    "parse_build_errors",
    "release_orphans",
    "requirement_problem",
    "runtime_cache_dirs",
    "runtime_components",
    "runtimes_with_toolchains",
    "with_python_column",
]

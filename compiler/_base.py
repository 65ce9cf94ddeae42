"""The builder protocol every runtime implements: source in, artifact and log out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from store.errors import NimbusError


class BuildFailed(NimbusError):
    """The user's source or artifact cannot be built; the message is for the user."""

    code = "build_failed"


@dataclass(frozen=True)
class BuildConfig:
    """What builders need from the server's settings, passed in explicitly."""

    toolchains_dir: Path = Path(".cache/toolchains")  # TOOLCHAINS_DIR
    timeout_sec: float = 600  # one compile, in its jail (BUILD_TIMEOUT_SEC)
    memory_mb: int = 2048  # per compiler process, in its jail (BUILD_MEMORY_MB)
    max_pids: int = 512  # processes and threads of one compile, in all (BUILD_MAX_PIDS)
    max_disk_mb: int = 1024  # what one build writes, in all (BUILD_MAX_DISK_MB)
    install_toolchains: bool = True  # install a missing toolchain on its first build

    def __post_init__(self) -> None:
        object.__setattr__(self, "toolchains_dir", Path(self.toolchains_dir).resolve())


@dataclass(frozen=True)
class BuildRequest:
    function_id: str
    version: int
    runtime: str
    handler: str | None
    form: str | None
    target: str | None
    files: dict[str, str] | None = None  # source runtimes
    binary: Path | None = None  # wasm / native uploads
    requirements: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BuildResult:
    artifact: Path
    kind: str  # "module" | "component" | "native" | "runtime"
    runtime_version: str
    # Kind "runtime": `artifact` is the shared runtime component (the same file
    # for every function of the language), `bundle` the function's own code as
    # the runtime takes it, `mounts` guest path → tar archive to mount read-only.
    bundle: Path | None = None
    mounts: dict[str, Path] = field(default_factory=dict)


class BuildLog:
    """Build output with elapsed-time stamps, kept in a file the pipeline uploads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._start = time.monotonic()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, line: str) -> None:
        stamp = time.monotonic() - self._start
        for part in line.rstrip("\n").split("\n"):
            self._file.write(f"[{stamp:7.2f}s] {part}\n")
        self._file.flush()

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        self._file.close()


class Builder(Protocol):
    """One runtime's builder, made by `builder_for(runtime, config)`.

    Optional, looked up with getattr (the `wasm` builder has neither):
    `cache_key(request) -> str | None` — what the build cache keys this build
    by (see `_buildcache.cache_key`); `prepare(log)` — install and warm the
    toolchain now (`python -m compiler install-toolchains`).
    """

    runtime: str

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult: ...

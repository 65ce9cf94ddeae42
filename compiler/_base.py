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
    kind: str  # "module" | "component" | "native"
    runtime_version: str


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
    runtime: str

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult: ...

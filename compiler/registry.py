"""The runtime registry: everything the platform knows about a language, in one entry.

Every package reads runtimes from here: the gateway validates names and
aliases, names a single `code` file, applies memory floors and decides which
runtimes may build native binaries or reuse instances; the build pipeline
makes builders; `GET /api/v1/runtimes` publishes the entries to the CLI and
the console (which may not import server packages). Adding a language is
one builder module and one `Runtime(...)` in `BUILTIN` — or, at run time,
`RUNTIMES.register(...)` (tests add a toy runtime that way).

`store` keeps a function's runtime as the plain string it was given and
never validates it: the dependency runs store ← compiler ← gateway
(docs/decisions/0008-one-runtime-registry.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from ._base import BuildConfig, Builder
from ._limits import BINARY_LIMIT, SOURCE_LIMIT
from .runtimes.c import CBuilder
from .runtimes.go import GoBuilder
from .runtimes.javascript import JavaScriptBuilder
from .runtimes.native import NativeBuilder
from .runtimes.python import PythonBuilder
from .runtimes.rust import RustBuilder
from .runtimes.wasm import WasmBuilder

RuntimeKind = Literal["source", "binary"]
DEFAULT_HANDLER_MODULE = "handler"


@dataclass(frozen=True)
class Runtime:
    """One language (or binary format) the platform builds and serves."""

    name: str
    kind: RuntimeKind  # "source": code or files; "binary": an uploaded artifact
    extension: str  # of its source files, or of its artifact ("wasm"); "" if none
    builder: Callable[[BuildConfig], Builder] = field(repr=False, compare=False)
    aliases: tuple[str, ...] = ()
    # Other file endings that mean this runtime (the CLI guesses runtimes from them).
    other_extensions: tuple[str, ...] = ()
    # Files whose presence makes a folder a project of this runtime (`nimbus deploy DIR`).
    project_files: tuple[str, ...] = ()
    default_handler: str | None = None  # what `handler` is when a function gives none
    forms: tuple[str, ...] = ("handler", "program")
    # What in the source makes it the program form (the builder detects it; shown to users).
    program_marker: str | None = None
    memory_floor_mb: int | None = None  # None: the server's MIN_MEMORY_MB
    native_allowed: bool = False  # `"target": "native"` builds (or takes) a Linux binary
    # A function of this runtime may opt in to warm instance reuse (per function
    # and version, never across them; issue 19). Native binaries run as processes.
    reuse_allowed: bool = True
    description: str = ""

    @property
    def code_size_limit(self) -> int:
        return BINARY_LIMIT if self.kind == "binary" else SOURCE_LIMIT

    @property
    def takes_handler(self) -> bool:
        """Whether `handler` means something: it names a function in source (Python,
        JavaScript; Go, Rust, C find theirs by it). A binary is called as it is: a module
        as a WASI command, a component by the handler world's export, a native binary as
        a program."""
        return self.kind == "source"

    @property
    def extensions(self) -> tuple[str, ...]:
        return ((self.extension,) if self.extension else ()) + self.other_extensions

    def code_filename(self, handler: str | None) -> str:
        """The file a single `code` is stored as: the handler names it.

        `"main.handler"` → `main.py` (Python; `main.js` for JavaScript,
        `main.go` for Go, ...); a handler without a module part, or none at
        all, keeps the default module name: `handler.<ext>`.
        """
        module, dot, _ = (handler or self.default_handler or "").rpartition(".")
        module = module if dot and module else DEFAULT_HANDLER_MODULE
        suffix = f".{self.extension}"
        return module if module.endswith(suffix) else module + suffix


class RuntimeRegistry:
    """Runtimes by name and alias (case-insensitive), safe to read from any thread."""

    def __init__(self, runtimes: tuple[Runtime, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, Runtime] = {}
        self._aliases: dict[str, str] = {}
        for runtime in runtimes:
            self.register(runtime)

    def register(self, runtime: Runtime) -> Runtime:
        names = [runtime.name, *runtime.aliases]
        if any(n != n.strip().lower() or not n for n in names):
            raise ValueError(f"runtime names and aliases are lower-case words: {names}")
        with self._lock:
            taken = [n for n in names if n in self._by_name or n in self._aliases]
            if taken:
                raise ValueError(f"runtime name or alias already registered: {taken}")
            self._by_name = {**self._by_name, runtime.name: runtime}
            self._aliases = {**self._aliases, **dict.fromkeys(runtime.aliases, runtime.name)}
        return runtime

    def unregister(self, name: str) -> None:
        with self._lock:
            runtime = self._by_name[name]
            self._by_name = {k: v for k, v in self._by_name.items() if k != name}
            self._aliases = {k: v for k, v in self._aliases.items() if v != runtime.name}

    @contextmanager
    def registered(self, runtime: Runtime) -> Iterator[Runtime]:
        """Register for the length of a `with` block (tests)."""
        self.register(runtime)
        try:
            yield runtime
        finally:
            self.unregister(runtime.name)

    def get(self, name: str) -> Runtime | None:
        """The runtime a name or alias means, or None."""
        key = name.strip().lower()
        # NOTE: both dicts are replaced whole on change, so readers need no lock.
        return self._by_name.get(self._aliases.get(key, key))

    def canonical(self, name: str) -> str | None:
        runtime = self.get(name)
        return runtime.name if runtime else None

    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def __iter__(self) -> Iterator[Runtime]:
        return iter(tuple(self._by_name.values()))

    def __getitem__(self, name: str) -> Runtime:
        runtime = self.get(name)
        if runtime is None:
            raise KeyError(name)
        return runtime


def _binary(make: Callable[[], Builder]) -> Callable[[BuildConfig], Builder]:
    return lambda config: make()


BUILTIN = (
    Runtime(
        "go", "source", "go", GoBuilder, program_marker="func main()", memory_floor_mb=32,
        native_allowed=True, project_files=("go.mod",), description="Go, compiled for wasip1",
    ),
    Runtime(
        "rust", "source", "rs", RustBuilder, program_marker="fn main",
        project_files=("Cargo.toml",), description="Rust",
    ),
    Runtime(
        "c", "source", "c", CBuilder, program_marker="int main(", native_allowed=True,
        description="C (zig cc for wasm32-wasi)",
    ),
    Runtime(
        "python", "source", "py", PythonBuilder, aliases=("python3.11", "python3"),
        default_handler="handler.main", forms=("handler",), memory_floor_mb=32,
        description="Python on the shared CPython runtime component",
    ),
    Runtime(
        "javascript", "source", "js", JavaScriptBuilder,
        aliases=("nodejs", "node20", "node", "js"), other_extensions=("mjs", "cjs"),
        project_files=("package.json", "wrangler.toml"),
        default_handler="handler.main", forms=("handler",), memory_floor_mb=32,
        description="JavaScript on the shared SpiderMonkey runtime component",
    ),
    Runtime(
        "wasm", "binary", "wasm", _binary(WasmBuilder), forms=("program", "handler"),
        description="a ready WebAssembly module (WASI command) or component (handler world)",
    ),
    Runtime(
        "native", "binary", "", _binary(NativeBuilder), forms=("program",),
        native_allowed=True, reuse_allowed=False,
        description="a Linux binary, run in a container (the native fallback)",
    ),
)  # fmt: skip

RUNTIMES = RuntimeRegistry(BUILTIN)

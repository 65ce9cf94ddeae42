"""What the CLI knows of runtimes: which files are whose source, and the default handler.

The server publishes its registry at `GET /api/v1/runtimes`; a server older than that
route answers 404 and the CLI falls back to `BUILTIN`, the one copy of this knowledge
on the client side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import ApiError

if TYPE_CHECKING:
    from .client import Client


@dataclass(frozen=True)
class Runtime:
    name: str
    aliases: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()  # the first is the one `code` is stored under
    default_handler: str | None = None
    binary: bool = False  # takes an artifact (wasm, native), not source


BUILTIN = (
    Runtime("python", ("python3.11", "python3", "py"), (".py",), "handler.main"),
    Runtime("javascript", ("nodejs", "node20", "node", "js"), (".js", ".mjs", ".cjs"),
            "handler.main"),
    Runtime("go", ("golang",), (".go",)),
    Runtime("rust", ("rs",), (".rs",)),
    Runtime("c", (), (".c",)),
    Runtime("wasm", (), (".wasm",), binary=True),
    Runtime("native", (), (), binary=True),
)  # fmt: skip


@dataclass
class Catalog:
    runtimes: tuple[Runtime, ...]
    _by_name: dict[str, Runtime] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for runtime in self.runtimes:
            for name in (runtime.name, *runtime.aliases):
                self._by_name[name.lower()] = runtime

    def get(self, name: str) -> Runtime | None:
        return self._by_name.get(name.strip().lower())

    def for_extension(self, suffix: str) -> Runtime | None:
        suffix = suffix.lower()
        return next((r for r in self.runtimes if suffix in r.extensions), None)

    def source_file(self, runtime: Runtime, handler: str | None) -> str:
        """The file a single `--code` is stored as: `main.handler` → `main.py`."""
        module = (handler or runtime.default_handler or "handler.main").rsplit(".", 1)[0]
        return f"{module}{runtime.extensions[0] if runtime.extensions else ''}"


def fetch(client: Client) -> Catalog:
    """The server's registry, or the built-in one when the server predates the route."""
    try:
        page = client.json("GET", "/api/v1/runtimes")
    except ApiError as exc:
        if exc.status in (404, 405):
            return Catalog(BUILTIN)
        raise
    return Catalog(tuple(_from_api(item) for item in page["runtimes"]))


def _from_api(item: dict) -> Runtime:
    extensions = list(item.get("extensions") or [])
    if item.get("extension") and item["extension"] not in extensions:
        extensions.insert(0, item["extension"])
    extensions = [e if e.startswith(".") else f".{e}" for e in extensions]
    return Runtime(
        name=item["name"],
        aliases=tuple(item.get("aliases") or ()),
        extensions=tuple(extensions),
        default_handler=item.get("default_handler"),
        binary=item.get("kind") == "binary",
    )

"""What the CLI knows of runtimes — which files are whose source, the default handler — read
from the server's registry (`GET /api/v1/runtimes`), never kept on the client side."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client


@dataclass(frozen=True)
class Runtime:
    name: str
    aliases: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()  # with the dot; the first is its main one
    default_handler: str | None = None
    binary: bool = False  # takes an artifact (wasm, native), not source
    project_files: tuple[str, ...] = ()  # a folder holding one is this runtime's


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

    def for_project(self, names: set[str]) -> Runtime | None:
        """The runtime whose project file (package.json, go.mod, ...) is among `names`."""
        return next((r for r in self.runtimes if names & set(r.project_files)), None)

    def for_extension(self, suffix: str) -> Runtime | None:
        suffix = suffix.lower()
        return next((r for r in self.runtimes if suffix in r.extensions), None)


def fetch(client: Client) -> Catalog:
    page = client.json("GET", "/api/v1/runtimes")
    return Catalog(tuple(_from_api(item) for item in page["runtimes"]))


def _from_api(item: dict) -> Runtime:
    names = [item["extension"], *item.get("extensions", [])] if item.get("extension") else []
    extensions = dict.fromkeys(e if e.startswith(".") else f".{e}" for e in names if e)
    return Runtime(
        name=item["name"],
        aliases=tuple(item.get("aliases") or ()),
        extensions=tuple(extensions),
        default_handler=item.get("default_handler"),
        binary=item.get("kind") == "binary",
        project_files=tuple(item.get("project_files") or ()),
    )

"""The functions the per-runtime load test deploys: a hello and a JSON transform per runtime.

Sources are the repository's own `examples/` (the compiled languages' hello
and order transform, Python's wordstats, JavaScript's invoice with its npm
dependency); the Python and JavaScript hellos are one-line handlers. Each comes
with the event it is invoked with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tests.e2e.compiled import ORDER

from .servers import REPO

EXAMPLES = REPO / "examples"

# One-line hellos, as the `runtimes` comparison deploys (the examples hold no
# Python or JavaScript hello). NOTE: not imported from it — comparisons import us.
PY_HANDLER = "def main(event, context):\n    return {'message': 'Hello, ' + event['name'] + '!'}\n"
JS_HANDLER = "exports.main = (event) => ({message: `Hello, ${event.name}!`});\n"

HELLO_EVENT = {"name": "Ada"}
WORDSTATS_EVENT = {
    "text": (
        "The quick brown fox jumps over the lazy dog while the dog dreams of "
        "the fox and the fox dreams of a quieter field far from the road. "
    )
    * 4
}
INVOICE_EVENT = {
    "customer": "ACME",
    "issued": "2024-01-31",
    "items": [
        {"sku": "a", "qty": 2, "unit_price": 9.99},
        {"sku": "b", "qty": 1, "unit_price": 5},
        {"sku": "c", "qty": 12, "unit_price": 0.35},
    ],
}


@dataclass(frozen=True)
class Workload:
    """One function to deploy through the API and the event to load it with."""

    runtime: str
    kind: str  # "hello" or "transform"
    fields: dict = field(hash=False)  # the create body beyond name and runtime
    event: dict = field(hash=False)

    @property
    def name(self) -> str:
        return f"load-{self.runtime}-{self.kind}"

    @property
    def label(self) -> str:
        return f"{self.runtime} {self.kind}"

    @property
    def body(self) -> bytes:
        return orjson.dumps(self.event)


def _example_dir(path: Path) -> dict:
    """`files` (every file but function.json) plus the settings function.json gives."""
    files = {
        str(p.relative_to(path)): p.read_text()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "function.json"
    }
    settings = json.loads((path / "function.json").read_text())
    settings.pop("runtime", None)
    return {"files": files, **settings}


def _source(lang: str, stem: str, ext: str) -> dict:
    return {"files": {f"handler.{ext}": (EXAMPLES / lang / f"{stem}.{ext}").read_text()}}


def all_workloads() -> list[Workload]:
    compiled = [("c", "c"), ("rust", "rs"), ("go", "go")]
    loads = []
    for lang, ext in compiled:
        loads.append(Workload(lang, "hello", _source(lang, "hello", ext), HELLO_EVENT))
        loads.append(Workload(lang, "transform", _source(lang, "transform", ext), ORDER))
    loads += [
        Workload("python", "hello", {"code": PY_HANDLER}, HELLO_EVENT),
        Workload(
            "python", "transform", _example_dir(EXAMPLES / "python/wordstats"), WORDSTATS_EVENT
        ),
        Workload("javascript", "hello", {"code": JS_HANDLER}, HELLO_EVENT),
        Workload(
            "javascript", "transform", _example_dir(EXAMPLES / "javascript/invoice"), INVOICE_EVENT
        ),
    ]
    return loads

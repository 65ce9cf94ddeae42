"""Turning what a user points at (a directory, a file, or `--code`) into a request body."""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .runtimes import Catalog, Runtime

# Folders that are build output, caches or installed dependencies, never source.
SKIPPED_DIRS = {"node_modules", "__pycache__", "target", "dist", "build", ".venv", "venv"}
MAX_FILES = 500
# A folder's settings, as in examples/ (the console's templates read the same file): what
# `nimbus deploy` sends with the source unless a flag says otherwise. Never uploaded.
MANIFEST = "function.json"
MANIFEST_KEYS = (
    "name", "runtime", "handler", "requirements", "memory_mb", "timeout_sec", "env_vars",
    "form", "target", "reuse", "tags", "description", "webhook", "max_concurrency",
    "async_retries", "async_on_failure",
)  # fmt: skip


class SourceError(Exception):
    """The path cannot be deployed as it is (the message says what to pass)."""


@dataclass
class Source:
    runtime: Runtime
    body: dict  # code | files, plus handler and requirements (and a manifest's settings)
    artifact: Path | None = None  # a wasm or native binary, uploaded as multipart (streamed)
    name: str | None = None  # the manifest's name, when it gives one


def from_code(catalog: Catalog, runtime_name: str, code: str, handler: str | None) -> Source:
    """`--code` text: the server names its file after the handler (`main.handler` → main.py)."""
    runtime = _runtime(catalog, runtime_name)
    if runtime.binary:
        raise SourceError(f"runtime {runtime.name} takes a binary: pass --file instead of --code")
    return Source(runtime, {"code": code, **({"handler": handler} if handler else {})})


def from_path(
    catalog: Catalog, path: Path, runtime_name: str | None, handler: str | None
) -> Source:
    if path.is_dir():
        return _from_dir(catalog, path, runtime_name, handler)
    return _from_file(catalog, path, runtime_name, handler)


def default_name(path: Path) -> str:
    """A DNS-label function name from a path: `./My_App/` → `my-app`."""
    stem = (path.resolve().name if path.is_dir() else path.stem).lower()
    name = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")[:63].strip("-")
    if not name:
        raise SourceError(f"cannot make a function name from {path}: pass NAME")
    return name


def _runtime(catalog: Catalog, name: str) -> Runtime:
    runtime = catalog.get(name)
    if runtime is None:
        known = ", ".join(r.name for r in catalog.runtimes)
        raise SourceError(f"unknown runtime {name!r} (known: {known})")
    return runtime


def _from_file(
    catalog: Catalog, path: Path, runtime_name: str | None, handler: str | None
) -> Source:
    if runtime_name:
        runtime = _runtime(catalog, runtime_name)
    else:
        runtime = catalog.for_extension(path.suffix) or _binary_runtime(catalog, path)
    if runtime is None:
        raise SourceError(f"cannot tell the runtime of {path.name}: pass --runtime")
    if runtime.binary:
        return Source(runtime, {}, artifact=path)
    text = _read_text(path)
    if path.suffix not in runtime.extensions:  # e.g. --runtime python for a .txt file
        return Source(runtime, {"code": text, **({"handler": handler} if handler else {})})
    # A single file keeps its own name, so `app.py` is served as `app.<function>` and a
    # build error or a stack trace of `transform.c` names transform.c (not handler.c).
    files = {path.name: text}
    return Source(runtime, {"files": files, **_handler(runtime, handler, files)})


BINARY_MAGIC = {b"\x7fELF": "native", b"\0asm": "wasm"}


def _binary_runtime(catalog: Catalog, path: Path) -> Runtime | None:
    """A binary named without an extension (`gcc -o hello`): an ELF executable is native,
    a module or component with the wasm magic is wasm."""
    with path.open("rb") as f:
        name = BINARY_MAGIC.get(f.read(4))
    return catalog.get(name) if name else None


def _from_dir(
    catalog: Catalog, root: Path, runtime_name: str | None, handler: str | None
) -> Source:
    files: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") or part in SKIPPED_DIRS for part in rel.parts[:-1]):
            continue
        if not path.is_file() or rel.name.startswith("."):
            continue
        if len(files) >= MAX_FILES:
            raise SourceError(f"{root} has more than {MAX_FILES} files: deploy a smaller folder")
        try:
            files[rel.as_posix()] = path.read_text()
        except UnicodeDecodeError:
            continue  # binaries (images, compiled output) are not source
    settings = _manifest(root, files.pop(MANIFEST)) if MANIFEST in files else {}
    if not files:
        raise SourceError(f"{root} has no source files")
    name, manifest_runtime = settings.pop("name", None), settings.pop("runtime", None)
    runtime_name = runtime_name or manifest_runtime
    runtime = _runtime(catalog, runtime_name) if runtime_name else _guess(catalog, files, root)
    if runtime.name == "javascript" and WRANGLER in files:
        wrangler = _wrangler(root, files[WRANGLER])
        name = name or wrangler.pop("name", None)
        settings = {**wrangler, **settings}
    body: dict = {**settings, "files": files}
    if runtime.name == "python" and "requirements.txt" in files:
        body["requirements"] = _requirements(files.pop("requirements.txt"))
    body.update(_handler(runtime, handler or settings.get("handler"), files))
    return Source(runtime, body, name=name)


WRANGLER = "wrangler.toml"  # a Cloudflare Workers project's settings


def _wrangler(root: Path, text: str) -> dict:
    """A Workers project's name, entry (`main = "src/index.js"` → handler
    `src/index.main`, served by the server's Workers adapter) and `[vars]` (env vars)."""
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourceError(f"{root / WRANGLER} is not TOML: {exc}") from None
    settings: dict = {}
    if isinstance(config.get("name"), str):
        settings["name"] = config["name"]
    entry = config.get("main")
    if isinstance(entry, str) and entry:
        settings["handler"] = f"{entry.removeprefix('./').rsplit('.', 1)[0]}.main"
    variables = config.get("vars")
    if isinstance(variables, dict) and variables:
        # Workers hand non-string vars over as JSON values; env vars are strings: their JSON.
        settings["env_vars"] = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in variables.items()
        }
    return settings


def _manifest(root: Path, text: str) -> dict:
    try:
        settings = json.loads(text)
    except ValueError as exc:
        raise SourceError(f"{root / MANIFEST} is not JSON: {exc}") from None
    if not isinstance(settings, dict):
        raise SourceError(f"{root / MANIFEST} must be a JSON object of settings")
    unknown = sorted(set(settings) - set(MANIFEST_KEYS))
    if unknown:
        raise SourceError(
            f"{root / MANIFEST}: unknown setting {unknown[0]!r} (known: {', '.join(MANIFEST_KEYS)})"
        )
    for key in ("name", "runtime", "handler"):
        if key in settings and not isinstance(settings[key], str):
            raise SourceError(f"{root / MANIFEST}: {key} must be a string")
    return settings


def _guess(catalog: Catalog, files: dict[str, str], root: Path) -> Runtime:
    runtime = catalog.for_project(set(files))
    if runtime is None:
        counts = Counter(r.name for f in files if (r := catalog.for_extension(Path(f).suffix)))
        top = counts.most_common(2)
        if not top:
            known = ", ".join(e for r in catalog.runtimes if not r.binary for e in r.extensions)
            raise SourceError(f"{root} has no source file of any runtime ({known})")
        if len(top) == 2 and top[0][1] == top[1][1]:
            raise SourceError(f"cannot tell the runtime of {root}: pass --runtime")
        runtime = catalog.get(top[0][0])
    assert runtime is not None
    return runtime


def _handler(runtime: Runtime, handler: str | None, files: dict[str, str]) -> dict:
    """The handler to send: the given one; or, when the runtime's default file is missing
    and there is exactly one top-level source file, that file's module and the function it
    defines: the default's (`main`), else AWS Lambda's (`lambda_function.lambda_handler`,
    `index.handler`), so a function written for Lambda deploys unchanged."""
    if handler or not runtime.default_handler:
        return {"handler": handler} if handler else {}
    module, function = runtime.default_handler.rsplit(".", 1)
    top_level = [n for n in files if "/" not in n and Path(n).suffix in runtime.extensions]
    if any(Path(n).stem == module for n in top_level) or len(top_level) != 1:
        return {}
    text = files[top_level[0]]
    chosen = next((f for f in (function, *LAMBDA_HANDLERS) if _defines(text, f)), function)
    return {"handler": f"{Path(top_level[0]).stem}.{chosen}"}


LAMBDA_HANDLERS = ("lambda_handler", "handler")  # AWS's defaults for Python and Node.js


def _defines(text: str, name: str) -> bool:
    """A top-level Python def or a JavaScript export of `name` (read, never run)."""
    patterns = (
        rf"^(?:async\s+)?def\s+{name}\s*\(",
        rf"^export\s+(?:async\s+)?(?:function\s*\*?|const|let|var)\s*{name}\b",
        rf"^(?:module\.)?exports\.{name}\s*=",
        rf"^module\.exports\s*=\s*\{{[^}}]*\b{name}\b",
    )
    return any(re.search(p, text, re.M) for p in patterns)


def _requirements(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise SourceError(f"{path} is not text: pass --runtime wasm or native") from None

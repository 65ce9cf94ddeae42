"""The shared Python runtime (host side): what it is made from, where it is, building it.

One component for every Python function (FIELD-NOTES.md, "Shared runtimes"):
`runner.py` (guest code, CPython 3.14 inside) componentized with
componentize-py against the `runtime` world of wit/handler.wit, and the
stdlib extracted from componentize-py's own archive, compiled to .pyc by the
guest and mounted read-only at /python. `scripts/runtimes/python.sh` builds
both once per machine into `.cache/runtimes/python-<id>/` (the id hashes
everything the runtime is made from, so a change is a new runtime and a new
`runtime_version`) and warms a sandbox cache folder beside it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ... import layout

HERE = Path(__file__).resolve().parent
WIT_DIR = layout.WIT_DIR
RUNNER = HERE / "runner.py"
PYC_COMPILER = HERE / "pyc_compile.py"
STDLIB_MOUNT = "/python"  # FIELD-NOTES.md: exactly this path, or submodules break
DEPS_MOUNT = "/deps"  # runner.py appends it to sys.path when mounted
FILES_MOUNT = "/function"  # a function's files, if it has data files: __file__ points here

# Everything under it is made by scripts/runtimes/python.sh: the runtimes and
# `cache/`, a sandbox cache folder (precompiled runtime, unpacked stdlib) that
# servers read as a seed.
RUNTIMES_DIR = layout.RUNTIMES_DIR
SEED_CACHE_DIR = RUNTIMES_DIR / "cache"


def componentize_py_version() -> str:
    return importlib.metadata.version("componentize-py")


def runner_revision() -> int:
    found = re.search(r"^REVISION = (\d+)", RUNNER.read_text(), re.MULTILINE)
    return int(found.group(1)) if found else 0


def runtime_id(home: Path | None = None) -> str:
    """A hash of everything the runtime is made from: in this checkout, or in the one
    at `home` (another git worktree of the repository), with this componentize-py."""
    sources = (RUNNER, PYC_COMPILER, WIT_DIR / "handler.wit")
    if home is not None:
        here = HERE.relative_to(layout.SOURCE_ROOT)
        sources = (home / here / RUNNER.name, home / here / PYC_COMPILER.name,
                   home / "wit" / "handler.wit")  # fmt: skip
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.read_bytes())
    digest.update(componentize_py_version().encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class PythonRuntime:
    """A built runtime: the component, the stdlib archive and what to call it."""

    folder: Path
    runtime_version: str  # e.g. "CPython 3.14.0 (componentize-py 0.25.1, nimbus-runtime 1)"
    python_version: str
    wasm_sha256: str = ""

    @property
    def wasm(self) -> Path:
        return self.folder / "runtime.wasm"

    @property
    def stdlib(self) -> Path:
        return self.folder / "stdlib.tar"


def runtime_folder(root: Path = RUNTIMES_DIR) -> Path:
    return root / f"python-{runtime_id()}"


def installed(root: Path = RUNTIMES_DIR) -> PythonRuntime | None:
    """The runtime built from this checkout's sources, or None if not built yet."""
    folder = runtime_folder(root)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return PythonRuntime(
        folder,
        manifest["runtime_version"],
        manifest["python_version"],
        manifest.get("wasm_sha256", ""),
    )


def write_manifest(folder: Path, python_version: str, extra: dict) -> PythonRuntime:
    version = (
        f"CPython {python_version} (componentize-py {componentize_py_version()}, "
        f"nimbus-runtime {runner_revision()})"
    )
    manifest = {"runtime_version": version, "python_version": python_version, **extra}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return PythonRuntime(folder, version, python_version)


# -- building (scripts/runtimes/python.sh) ----------------------------------------------


def _componentize_py_library() -> Path:
    import componentize_py

    found = sorted(Path(componentize_py.__file__).parent.glob("componentize_py*.so"))
    if not found:
        raise RuntimeError("componentize-py's native library was not found")
    return found[0]


def extract_stdlib(dest: Path) -> int:
    """Unpack CPython's stdlib from the zstd-compressed tar inside componentize-py's
    library (the one it embeds into every component); returns the file count."""
    import zstandard

    data = _componentize_py_library().read_bytes()
    magic, start = b"\x28\xb5\x2f\xfd", 0
    while (start := data.find(magic, start)) >= 0:
        try:
            raw = zstandard.ZstdDecompressor().decompressobj().decompress(data[start:])
        except zstandard.ZstdError:
            raw = b""
        start += 4
        if raw[257:262] != b"ustar":
            continue
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            names = tar.getnames()
            if "os.py" in names and "encodings/__init__.py" in names:
                tar.extractall(dest, filter="data")
                return len(names)
    raise RuntimeError("no CPython stdlib archive found in componentize-py's library")


def componentize(out: Path) -> None:
    """Build the runtime component (~20-40 s)."""
    tool = Path(sys.executable).with_name("componentize-py")
    subprocess.run(
        [str(tool), "-d", str(WIT_DIR), "-w", "runtime",
         "componentize", "-p", str(HERE), "runner", "-o", str(out)],
        check=True,
        timeout=900,
    )  # fmt: skip


def archive(folder: Path, out: Path) -> None:
    """A plain tar (files and folders only, sorted, owner-neutral) of `folder`'s contents."""

    def neutral(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False, filter=neutral)

"""The files of the installed shared runtimes an image needs, relative to RUNTIMES_DIR.

    python scripts/image/runtime_files.py          print them
    python scripts/image/runtime_files.py DEST     copy them under DEST (hard links if it can)

`.cache/runtimes/` keeps every runtime a machine ever built and a seed cache
of their precompiled components; an image needs only the current Python and
JavaScript runtimes (the ones this checkout's sources hash to) and their seed
entries: the precompiled components for this engine (its tag: the wasmtime
version among it; a machine that upgraded wasmtime keeps the older engine's
too), named by their wasm's sha256, and the unpacked stdlib, named by its
archive's. Exits 1 when a runtime is not built.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.runtimes import javascript, python_runtime
from sandbox import engine_tag


def main() -> int:
    python, js = python_runtime.installed(), javascript.installed()
    if python is None or js is None:
        print(
            "error: the shared runtimes are not built "
            "(scripts/runtimes/python.sh, scripts/runtimes/javascript.sh)",
            file=sys.stderr,
        )
        return 1
    seed = python_runtime.SEED_CACHE_DIR
    stdlib = json.loads((python.folder / "manifest.json").read_text()).get("stdlib_sha256")
    wanted = [python.folder, js.folder, seed / "mounts" / str(stdlib)]
    wanted += [seed / engine_tag() / sha for sha in (python.wasm_sha256, js.wasm_sha256)]
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    for path in wanted:
        if not path.is_dir():
            continue
        relative = path.relative_to(python_runtime.RUNTIMES_DIR)
        if dest is None:
            print(relative)
        else:
            shutil.copytree(path, dest / relative, copy_function=_link_or_copy)
    return 0


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)


if __name__ == "__main__":
    sys.exit(main())

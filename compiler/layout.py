"""Where the platform's own files are: WIT worlds, install scripts, runtime sources, built runtimes.

From a checkout (or an editable install) they are beside the packages, in
the repository. An installed package (`pip install .`, the container image)
has only the Python packages, so `NIMBUS_HOME` names a folder laid out like
the repository: `wit/`, `scripts/`, `runtimes/javascript/` and the built
runtimes under `.cache/runtimes/` (the Containerfile copies them to /app and
sets `NIMBUS_HOME=/app`). This module is the one place that reads it: the
compiler's paths are fixed at import, before any settings object exists.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the repository, in a checkout


def _home() -> Path:
    configured = os.environ.get("NIMBUS_HOME")
    return Path(configured).resolve() if configured else SOURCE_ROOT


HOME = _home()
WIT_DIR = HOME / "wit"  # the published worlds (handler, runtime)
SCRIPTS_DIR = HOME / "scripts"  # toolchain and runtime install scripts
JS_RUNTIME_SOURCES = HOME / "runtimes" / "javascript"  # runtime.js, its world, package.json
RUNTIMES_DIR = HOME / ".cache" / "runtimes"  # built shared runtimes and their seed cache


def missing() -> list[str]:
    """What the layout lacks that builds of Python/JavaScript/compiled functions need."""
    wanted = [
        WIT_DIR / "handler.wit",
        SCRIPTS_DIR / "toolchains",
        JS_RUNTIME_SOURCES / "src" / "runtime.js",
    ]
    return [str(path) for path in wanted if not path.exists()]


def checkouts_runtime_ids(
    runtime_id: Callable[[Path], str], repo: Path = SOURCE_ROOT
) -> set[str] | None:
    """The runtime id (`runtime_id(home)`) each git worktree of the repository at `repo`
    expects, None outside git.
    NOTE(build): worktrees share .cache/runtimes (a symlink to the main checkout's), so a
    runtime build must not remove the runtime another checkout's tests and server still
    load (runtimes/javascript/build.py, scripts/runtimes/python_runtime.py)."""
    try:
        listing = subprocess.run(
            ["git", "-C", str(repo), "worktree", "list", "--porcelain"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    ids = set()
    for line in listing.splitlines():
        if line.startswith("worktree "):
            try:
                ids.add(runtime_id(Path(line.removeprefix("worktree "))))
            except (OSError, ValueError):
                continue  # a worktree whose folder is gone, or a bare repository
    return ids

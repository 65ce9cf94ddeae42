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

"""An installed package finds the platform's files through NIMBUS_HOME (compiler/layout.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from compiler import layout

PROBE = """
import json
from compiler import layout
from compiler import _toolchains
from compiler.runtimes import javascript, python_runtime
print(json.dumps({
    "wit": str(python_runtime.WIT_DIR), "js_wit": str(javascript.WIT_DIR),
    "js_sources": str(javascript.SOURCES), "runtimes": str(python_runtime.RUNTIMES_DIR),
    "scripts": str(_toolchains.SCRIPTS_DIR), "missing": layout.missing(),
    "runtime_id": python_runtime.runtime_id(),
}))
"""


def _probe(env: dict[str, str], cwd: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(layout.SOURCE_ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_checkout_needs_no_configuration(tmp_path):
    found = _probe({"NIMBUS_HOME": ""}, tmp_path)
    assert found["wit"] == str(layout.SOURCE_ROOT / "wit") and found["missing"] == []


def test_nimbus_home_moves_every_path_and_names_what_is_missing(tmp_path):
    home = tmp_path / "app"
    shutil.copytree(layout.SOURCE_ROOT / "wit", home / "wit")
    shutil.copytree(layout.SOURCE_ROOT / "scripts", home / "scripts")
    found = _probe({"NIMBUS_HOME": str(home)}, tmp_path)
    assert found["wit"] == found["js_wit"] == str(home / "wit")
    assert found["scripts"] == str(home / "scripts" / "toolchains")
    assert found["js_sources"] == str(home / "runtimes" / "javascript")
    assert found["runtimes"] == str(home / ".cache" / "runtimes")
    # the same inputs give the same runtime id as in the checkout: a built runtime is found
    assert found["runtime_id"] == _probe({"NIMBUS_HOME": ""}, tmp_path)["runtime_id"]
    assert found["missing"] == [str(home / "runtimes" / "javascript" / "src" / "runtime.js")]

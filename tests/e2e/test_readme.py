"""The README's examples run as written against a real `nimbus serve`.

The shell blocks of the Quick start (all but `make …`) and the native
example's block run in one bash session, in a folder laid out like a fresh
clone (`data/` is the server's, `examples/` a copy, `.venv` this one), with
the server's address in place of the README's 127.0.0.1:8080.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[start : end if end >= 0 else None]


def _shell_blocks(section: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [b for b in blocks if not b.lstrip().startswith("make ")]


def _run(blocks: list[str], cwd: Path, server_url: str) -> str:
    script = "set -euo pipefail\n" + "\n".join(blocks).replace("http://127.0.0.1:8080", server_url)
    out = subprocess.run(
        ["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


@pytest.fixture
def clone(tmp_path: Path, make_server) -> tuple[Path, str]:
    server = make_server(data_dir=tmp_path / "clone" / "data").start()
    shutil.copytree(REPO / "examples", tmp_path / "clone" / "examples")
    (tmp_path / "clone" / ".venv").symlink_to(Path(sys.executable).parents[1])
    return tmp_path / "clone", server.url


def test_the_quick_start_runs_as_written(clone):
    cwd, url = clone
    readme = (REPO / "README.md").read_text()
    out = _run(_shell_blocks(_section(readme, "## Quick start")), cwd, url)
    assert '"name":"hello"' in out and '"status":"active"' in out
    assert '"name":"echo"' in out
    assert '{"name": "world"}' in out  # the echo component's reply
    assert '{"hello": "world"}' in out  # hello:1
    assert '{"hi":"ada"}' in out.replace(" ", "")
    tail = re.search(r"x-nimbus-log-tail: (\S+)", out, re.I)
    assert tail, out

    assert "greeting ada" in base64.b64decode(tail.group(1)).decode()
    assert '"trigger":"api"' in out  # the invocation list


def test_the_native_example_builds_and_deploys(clone):
    cwd, url = clone
    readme = (REPO / "README.md").read_text()
    native = _shell_blocks(_section(readme, "### Native binaries"))
    assert len(native) == 1
    out = _run(["KEY=$(cat data/api_key)", *native], cwd, url)
    assert '"name":"native-hello"' in out and '"status":"active"' in out

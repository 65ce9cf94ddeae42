"""The README's examples run as written against a real `nimbus serve`.

The shell blocks of the Quick start (all but `make …`) and the native
example's block run in one bash session, in a folder laid out like a fresh
clone (`data/` is the server's, `examples/` a copy, `.venv` this one), with
the server's address in place of the README's 127.0.0.1:8080. The curl examples of
the API sections (keys, versions, aliases, canary, workflows, schedules, stats,
alerts) run one by one against one server, each answering 2xx.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
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


# The sections whose curl examples run, in this order, against one server; before each,
# what it names is made through the API (the functions, versions and aliases it uses).
API_SECTIONS = (
    "### API keys and scopes",
    "### Versions and rollback",
    "### Aliases and weighted routing",
    "### Automatic canary",
    "### Workflows (Amazon States Language)",
    "### Schedules (cron)",
    "### Logs, metrics, stats",
    "### Alerts",
)
# Ids the README cannot know, filled in from what an earlier example answered.
PLACEHOLDERS = {"key_…": "key_", "ex_…": "ex_", "alr_…": "alr_"}
# Every curl reports its status on a line of its own; the README's text is run unchanged.
CURL_STATUS = 'curl() { command curl -sS -w "\\n@status=%{http_code}\\n" "$@"; }\n'


def _subsection(text: str, heading: str) -> str:
    """From `heading` to the next heading (a `# comment` in a block is not one)."""
    start = text.index(heading)
    end = re.compile(r"^#{2,3} ", re.M).search(text, start + len(heading))
    return text[start : end.start() if end else None]


def _commands(section: str) -> list[str]:
    """Each command of the section's sh blocks, continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"^( *)```sh\n(.*?)^ *```", section, re.S | re.M):
        pending = ""
        for line in textwrap.dedent(block[1]).splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line + "\n"
            if not line.rstrip().endswith("\\") and _complete(pending):
                commands.append(pending)
                pending = ""
    return commands


def _complete(command: str) -> bool:
    """Whether the shell would run `command` as it is (its quotes are closed)."""
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return False
    return True


def _python(code: str) -> dict:
    return {"runtime": "python", "code": f"def main(event):\n    return {code}\n"}


def _prepare(api, heading: str) -> None:
    """Make what the section's examples name, as a user would have before running them."""

    def deploy(name: str, versions: int = 1) -> None:
        for v in range(1, versions + 1):
            body = {"name": name, **_python(f"{{'v': {v}, 'event': event}}")}
            resp = (
                api.post("/api/v1/functions", json=body, params={"wait": "true"})
                if v == 1
                else api.put(f"/api/v1/functions/{name}", json=body, params={"wait": "true"})
            )
            assert resp.status_code in (200, 201) and resp.json()["status"] == "active", resp.text

    if heading.startswith("### Versions"):
        deploy("hello", versions=5)
    elif heading.startswith("### Automatic canary"):
        resp = api.post("/api/v1/functions/hello/aliases", json={"name": "prod", "version": 4})
        assert resp.status_code == 201, resp.text
    elif heading.startswith("### Workflows"):
        deploy("charge")
        deploy("ship")
        assert api.post("/api/v1/functions/charge/aliases", json={"name": "live", "version": 1})
    elif heading.startswith("### Schedules"):
        deploy("report")
    elif heading.startswith("### Alerts"):
        deploy("checkout")


def test_the_api_examples_run_as_written(make_server, tmp_path):
    """Every curl of the API sections answers 2xx as written (ids the README cannot know,
    such as `ex_…`, are taken from the answer that made them)."""
    server = make_server(data_dir=tmp_path / "data").start()
    ids: dict[str, str] = {}
    readme = (REPO / "README.md").read_text()
    ran = 0
    with server.client() as api:
        for heading in API_SECTIONS:
            _prepare(api, heading)
            for command in _commands(_subsection(readme, heading)):
                for placeholder, value in ids.items():
                    command = command.replace(placeholder, value)
                address = f"127.0.0.1:{server.port}"
                command = command.replace("127.0.0.1:8080", address)
                command = command.replace("localhost:8080", address)
                out = subprocess.run(
                    ["bash", "-c", f"set -euo pipefail\n{CURL_STATUS}{command}"],
                    capture_output=True, text=True, timeout=120,
                    env={"PATH": "/usr/bin:/bin", "KEY": server.api_key},
                )  # fmt: skip
                body, _, status = out.stdout.rpartition("@status=")
                assert out.returncode == 0 and status.strip().startswith("2"), (
                    heading, command, out.stdout, out.stderr,
                )  # fmt: skip
                for placeholder, prefix in PLACEHOLDERS.items():
                    found = re.search(rf'"id": ?"({prefix}[a-z0-9-]+)"', body)
                    if found and placeholder not in ids:
                        ids[placeholder] = found.group(1)
                ran += 1
    assert ran >= 20 and set(ids) == set(PLACEHOLDERS), (ran, ids)


def test_the_handler_conventions_name_every_runtime_of_the_registry():
    from compiler import RUNTIMES

    table = _subsection((REPO / "README.md").read_text(), "### Handler conventions")
    rows = set(re.findall(r"^\| `([a-z0-9]+)` \|", table, re.M))
    assert rows == set(RUNTIMES.names())


def test_the_command_line_example_runs_after_the_quick_start(clone):
    """A user who ran the Quick start then the CLI's first block: `nimbus create hello`
    met the quick start's wasm `hello` (409 name_taken), and `nimbus delete hello` would
    have deleted it."""
    cwd, url = clone
    readme = (REPO / "README.md").read_text()
    quick = _shell_blocks(_section(readme, "## Quick start"))
    cli = _shell_blocks(_section(readme, "## Command line"))[0]
    setup = (
        'export PATH="$PWD/.venv/bin:$PATH" XDG_CONFIG_HOME="$PWD/.config"'
        " NIMBUS_API_KEY=$(cat data/api_key)"
    )
    out = _run([*quick, setup, cli.replace("http://localhost:8080", url)], cwd, url)
    assert '"name": "World"' in out and '"status": "queued"' in out
    assert json.loads(_run([setup, "nimbus invoke hello:1"], cwd, url)) == {"hello": "world"}

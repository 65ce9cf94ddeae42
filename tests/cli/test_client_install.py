"""`pip install nimbus` without the server extra: a working CLI and MCP server, no wasmtime."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("store", "compiler", "sandbox", "gateway", "cli", "console")


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    """A fresh venv with only the client install, from a copy of the sources (an in-tree
    build would leave build/ and egg-info behind in the checkout)."""
    root = tmp_path_factory.mktemp("client-install")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = root / "venv"
    # PERF: no pip inside the venv (this interpreter's pip installs into it) and no .pyc
    # compiling of every dependency: the venv lives for this module only.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    subprocess.run(
        [*pip, "install", "-q", "--no-compile", str(src)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return venv


def run(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, timeout=60
    )


def test_the_client_install_has_no_server_dependencies(client_venv):
    servers = "('wasmtime', 'falcon', 'gunicorn', 'boto3')"
    probe = f"import importlib.util as u; print([m for m in {servers} if u.find_spec(m)])"
    out = run(client_venv, "python", "-c", probe)
    assert out.stdout.strip() == "[]", out.stderr


def test_help_works_for_the_cli_and_the_mcp_server(client_venv):
    for args in (("nimbus", "--help"), ("nimbus", "mcp", "--help"), ("nimbus-mcp", "--help")):
        out = run(client_venv, *args)
        assert out.returncode == 0, out.stderr
        assert "Usage:" in out.stdout and "Traceback" not in out.stderr
    assert "invoke" in run(client_venv, "nimbus", "--help").stdout
    assert "--read-only" in run(client_venv, "nimbus-mcp", "--help").stdout


def test_commands_never_import_the_server(client_venv):
    """Every command module and the MCP server load; nothing of the server comes with them."""
    script = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from cli.main import COMMANDS, main
        from cli import mcp_server  # noqa: F401
        runner = CliRunner()
        for name in COMMANDS:
            assert runner.invoke(main, [name, "--help"]).exit_code == 0, name
        # a real call path: the API is unreachable, which is an API error (exit 1)
        result = runner.invoke(main, ["--api-url", "http://127.0.0.1:9", "list"])
        assert result.exit_code == 1 and "unreachable" in result.output, result.output
        server = sorted(m for m in sys.modules
                        if m.split(".")[0] in ("wasmtime", "store", "gateway", "sandbox"))
        print(server)
    """)
    out = run(client_venv, "python", "-c", script)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_serve_says_what_to_install(client_venv):
    out = run(client_venv, "nimbus", "serve")
    assert out.returncode == 1
    assert "nimbus[server]" in out.stderr and "Traceback" not in out.stderr

"""The `nimbus` command against a real server."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import textwrap
import time
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from tests.e2e import wasm as w
from tests.e2e.server import NIMBUS, NimbusProcess


def test_deploy_invoke_list_delete(make_server, tmp_path):
    server = make_server().start()
    runner = CliRunner()
    base = ["--url", server.url, "--api-key", server.api_key]
    module = tmp_path / "echo.wasm"
    module.write_bytes(w.wat(w.ECHO_WAT))

    out = runner.invoke(main, [*base, "deploy", "cli-echo", str(module)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["status"] == "active"

    out = runner.invoke(main, [*base, "invoke", "cli-echo", "-d", '{"hi": 1}'])
    assert out.exit_code == 0 and json.loads(out.output) == {"hi": 1}

    out = runner.invoke(main, [*base, "deploy", "cli-echo", str(module), "--timeout", "5"])
    assert json.loads(out.output)["latest_version"] == 2  # an update, not a second function

    out = runner.invoke(main, [*base, "list"])
    assert "cli-echo" in out.output and "active" in out.output

    out = runner.invoke(main, [*base, "delete", "cli-echo"])
    assert out.exit_code == 0
    out = runner.invoke(main, [*base, "get", "cli-echo"])
    assert out.exit_code == 1 and "404 not_found" in out.output


def test_wrong_key_is_a_clear_error(make_server):
    server = make_server().start()
    out = CliRunner().invoke(main, ["--url", server.url, "--api-key", "nope", "list"])
    assert out.exit_code == 1 and "401 unauthorized" in out.output


# -- the seed's commands, typed as users type them ---------------------------------------


def nimbus(home: Path, *args: str, stdin: str | None = None, **env: str):
    """`nimbus ARGS` in a fresh process with HOME=home and no key in the environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NIMBUS_", "XDG_"))}
    return subprocess.run(
        [str(NIMBUS), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "HOME": str(home), **env},
        cwd=home,
    )


def test_seed_commands_work_as_typed(make_server, tmp_path):
    server = make_server().start()
    home = tmp_path / "home"
    home.mkdir()

    out = nimbus(home, "config", "init", "--api-url", server.url, stdin=server.api_key + "\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["check"] == {"ok": True}
    config_file = home / ".config" / "nimbus" / "config.toml"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert server.api_key in config_file.read_text()

    seed_create = ["create", "hello", "--runtime", "python3.11", "--handler", "main.handler"]
    out = nimbus(home, *seed_create, "--code", "def handler(e): return e")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "active"
    with server.client() as api:
        code = api.get("/api/v1/functions/hello/code").json()
        assert code["files"] == {"main.py": "def handler(e): return e"}
        assert code["handler"] == "main.handler"

    out = nimbus(home, "list")
    assert out.returncode == 0
    assert [fn["name"] for fn in json.loads(out.stdout)["functions"]] == ["hello"]

    out = nimbus(home, "get", "hello")
    assert out.returncode == 0 and json.loads(out.stdout)["runtime"] == "python"

    out = nimbus(home, "invoke", "hello", "--data", '{"name": "World"}')
    assert out.returncode == 0 and json.loads(out.stdout) == {"name": "World"}

    out = nimbus(home, "invoke", "hello", "--async")
    assert out.returncode == 0
    invocation_id = json.loads(out.stdout)["invocation_id"]
    with server.client() as api:
        assert _final(api, invocation_id)["result"] == {}  # no --data: the empty event

    out = nimbus(home, "delete", "hello")
    assert out.returncode == 0 and json.loads(out.stdout) == {"deleted": ["hello"]}
    with server.client() as api:
        assert api.get("/api/v1/functions/hello").status_code == 404


def _final(api, invocation_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = api.get(f"/api/v1/invocations/{invocation_id}").json()
        if record["status"] in ("succeeded", "failed", "timed_out"):
            return record
        time.sleep(0.2)
    raise AssertionError(f"{invocation_id} did not finish: {record}")


def test_the_readme_command_line_block_runs_as_written(make_server, tmp_path):
    server = make_server().start()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Command line") : readme.index("## MCP server")]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    script = "set -euo pipefail\n" + block.replace("http://localhost:8080", server.url)
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NIMBUS_", "XDG_"))}
    out = subprocess.run(
        ["bash", "-c", script], input=server.api_key + "\n", capture_output=True, text=True,
        timeout=120, cwd=home,
        env={**clean, "HOME": str(home), "PATH": f"{NIMBUS.parent}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert '"name": "World"' in out.stdout and '"invocation_id"' in out.stdout
    assert '{"deleted": ["hi"]}' in out.stdout.replace("\n", "").replace("  ", "")


def test_the_readme_release_block_runs_as_written(make_server, tmp_path):
    server = make_server().start()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("a release, end to end") : readme.index("## MCP server")]
    block = textwrap.dedent(section.split("```sh\n", 1)[1].split("```", 1)[0])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NIMBUS_", "XDG_"))}
    out = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block], capture_output=True, text=True,
        timeout=300, cwd=tmp_path,
        env={**clean, "HOME": str(tmp_path), "PATH": f"{NIMBUS.parent}:{os.environ['PATH']}",
             "NIMBUS_API_URL": server.url, "NIMBUS_API_KEY": server.api_key},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    with server.client() as api:
        assert api.get("/api/v1/functions/greeter").json()["active_version"] == 1
        prod = api.get("/api/v1/functions/greeter/aliases/prod").json()
        assert prod["version"] == 1 and prod["routing"] == {}
        assert prod["canary"]["status"] == "aborted"
        actions = [e["action"] for e in api.get("/api/v1/functions/greeter/history").json()[
            "entries"]]  # fmt: skip
        assert actions[:2] == ["rollback", "canary_aborted"]


def test_invoke_reads_stdin_only_when_asked(make_server, tmp_path):
    server = make_server().start()
    base = ["--url", server.url, "--api-key", server.api_key]
    runner = CliRunner()
    code = "def main(event):\n    return event\n"
    assert (
        runner.invoke(main, [*base, "create", "echo", "-r", "python", "--code", code]).exit_code
        == 0
    )
    out = runner.invoke(main, [*base, "invoke", "echo"], input='{"from": "stdin"}')
    assert json.loads(out.stdout) == {}  # a script's stdin is left alone
    out = runner.invoke(main, [*base, "invoke", "echo", "-d", "-"], input='{"from": "stdin"}')
    assert json.loads(out.stdout) == {"from": "stdin"}
    event = tmp_path / "event.json"
    event.write_text('{"from": "file"}')
    out = runner.invoke(main, [*base, "invoke", "echo", "--file", str(event)])
    assert json.loads(out.stdout) == {"from": "file"}
    out = runner.invoke(main, [*base, "invoke", "echo", "-d", f"@{event}"])
    assert json.loads(out.stdout) == {"from": "file"}


def test_serve_takes_the_data_dir_as_a_flag_and_says_where_to_go(tmp_path):
    data = tmp_path / "flagged"
    server = NimbusProcess(data, env={"DATA_DIR": str(tmp_path / "unused")},
                           args=("--data-dir", str(data)))  # fmt: skip
    try:
        server.start()
        assert (data / "api_key").is_file() and not (tmp_path / "unused").exists()
        with server.client() as api:
            assert api.get("/api/v1/functions").status_code == 200
    finally:
        server.stop()
    said = server.log_path.read_text()
    # every start, not only the first: where the console is and where the key comes from
    banner = (f"Nimbus on {server.url}/ (the console; the API under /api/v1, key from "
              f"{data / 'api_key'}); store file://{data}")  # fmt: skip
    assert banner in said, said
    server.start()
    server.stop()
    assert said.count("Nimbus on ") == 1 and server.log_path.read_text().count("Nimbus on ") == 2


def test_serve_on_a_port_in_use_says_so_once(make_server, tmp_path):
    # It printed "Nimbus on http://127.0.0.1:PORT/" (the other server's URL) and then
    # gunicorn's ten ERROR lines over five seconds
    running = make_server().start()
    port = running.url.rsplit(":", 1)[1]
    env = {**os.environ, "PORT": port, "DATA_DIR": str(tmp_path / "second")}
    out = subprocess.run([str(NIMBUS), "serve"], env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert out.stderr == (
        f"Error: 127.0.0.1:{port} is in use (another `nimbus serve`?): stop it, or pick another "
        "port with --port (PORT)\n"
    )


def _table_nimbus(server, tmp_path, source: str, *names: str):
    """`nimbus -o table ARGS` against `server`, where `names` run the module `source`."""
    runner = CliRunner()
    base = ["--url", server.url, "--api-key", server.api_key, "-o", "table"]
    module = tmp_path / "module.wasm"
    module.write_bytes(w.wat(source))
    for name in names:
        assert runner.invoke(main, [*base, "deploy", name, str(module)]).exit_code == 0
    return lambda *args: runner.invoke(main, [*base, *args])


def test_a_failed_async_call_waited_on_reads_as_a_sync_one(make_server, tmp_path):
    nimbus = _table_nimbus(make_server().start(), tmp_path, w.FAIL_WAT, "cli-fail")
    out = nimbus("invoke", "cli-fail", "--async", "--wait")
    assert out.exit_code == 3, out.output
    # the error as `nimbus invoke` prints it (was a JSON blob in the table), and the
    # duration in ms as `invocations list` shows it (was duration_ms 3.1460380014323164)
    assert '{"code"' not in out.output and "duration_ms" not in out.output
    assert re.search(r"duration +\d+\.\d ms *\n", out.output), out.output
    assert "\nExitError: function exited with status 3\n" in out.output


def test_delete_of_several_deletes_every_one_it_can_and_says_which(make_server, tmp_path):
    server = make_server().start()
    nimbus = _table_nimbus(server, tmp_path, w.ECHO_WAT, "del-a", "del-b")
    out = nimbus("delete", "del-a", "nosuch", "del-b")
    assert out.exit_code == 1
    # it stopped at `nosuch`: del-b stayed, and nothing said del-a had gone
    assert "deleted del-a, del-b\n" in out.stderr
    assert "Error: 404 not_found: function 'nosuch' not found" in out.stderr
    with server.client() as api:
        assert api.get("/api/v1/functions").json()["total"] == 0

"""The `nimbus` command against a real server."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import main
from tests.e2e import wasm as w


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

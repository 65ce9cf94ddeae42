"""The CLI's connection precedence, output modes and exit codes against a real server."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner

from cli.main import main

DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port


def cli(home, *args, input=None, **env):
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": None, "NIMBUS_API_URL": None,
               "NIMBUS_API_KEY": None, "NIMBUS_PROFILE": None, "NIMBUS_URL": None,
               "NIMBUS_OUTPUT": None, "DATA_DIR": None, **env}  # fmt: skip
    return CliRunner().invoke(main, list(args), input=input, env=environ)


def _json(out) -> dict:
    """The one JSON document a command prints on stdout. NOTE: not `out.output`, which
    (click >= 8.2) interleaves stderr: an error's message or a note to the person there made
    a failure under load show up as a bare JSONDecodeError instead of its cause."""
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_flag_beats_environment_beats_profile(make_server, tmp_path):
    server = make_server().start()
    key = server.api_key
    for profile, url in (("dead", DEAD), ("prod", server.url)):
        out = cli(tmp_path, "config", "init", "-p", profile, "--api-url", url, "--api-key", key)
        assert out.exit_code == 0, out.output
    # the first profile written is the default: a server that is not there
    out = cli(tmp_path, "list")
    assert out.exit_code == 1 and "unreachable" in out.output

    assert cli(tmp_path, "list", NIMBUS_API_URL=server.url).exit_code == 0
    out = cli(tmp_path, "list", "--api-url", DEAD, NIMBUS_API_URL=server.url)
    assert out.exit_code == 1  # the flag wins over the environment
    assert cli(tmp_path, "--profile", "prod", "list").exit_code == 0
    assert cli(tmp_path, "list", NIMBUS_PROFILE="prod").exit_code == 0

    shown = _json(cli(tmp_path, "config", "show", NIMBUS_API_URL=server.url))
    assert shown["sources"] == {"api_url": "NIMBUS_API_URL", "api_key": "profile dead"}
    assert key not in json.dumps(shown)  # masked

    out = cli(tmp_path, "list", "--profile", "staging")
    assert out.exit_code == 1 and "no profile 'staging'" in out.output

    assert cli(tmp_path, "config", "use", "prod").exit_code == 0
    assert cli(tmp_path, "list").exit_code == 0


def test_the_servers_key_file_is_read_only_when_asked(make_server, tmp_path):
    server = make_server().start()
    data_dir = server.data_dir
    out = cli(tmp_path, "--url", server.url, "list", DATA_DIR=str(data_dir))
    assert out.exit_code == 1 and "401" in out.output
    # no key at all: the message says how to give one (not the server's "wrong key")
    assert "no API key given" in out.stderr and "--api-key-file" in out.stderr
    assert "nimbus config init" in out.stderr
    key_file = str(data_dir / "api_key")
    out = cli(tmp_path, "--url", server.url, "list", "--api-key-file", key_file)
    assert out.exit_code == 0, out.output


def test_exit_codes_and_errors_as_json(make_server, tmp_path):
    server = make_server().start()
    base = ["--url", server.url, "--api-key", server.api_key]
    code = "def main(event):\n    print('checking', event)\n    raise ValueError('no name')\n"
    out = cli(tmp_path, *base, "create", "picky", "-r", "python", "--code", code)
    assert out.exit_code == 0, out.output

    out = cli(tmp_path, *base, "invoke", "picky", "-d", '{"a": 1}', "-o", "json")
    assert out.exit_code == 3
    error = json.loads(out.stdout)["error"]
    assert error["code"] == "function_error" and error["type"] == "ValueError"
    assert error["message"] == "no name"

    out = cli(tmp_path, *base, "invoke", "picky", "-d", "{}", "-v", "-o", "table")
    assert out.exit_code == 3
    assert "ValueError" in out.stderr and "checking {}" in out.stderr  # the log tail

    out = cli(tmp_path, *base, "get", "absent", "-o", "json")
    assert out.exit_code == 1
    assert json.loads(out.stdout)["error"]["code"] == "not_found"
    assert "404 not_found" in out.stderr and "Traceback" not in out.output

    out = cli(tmp_path, *base, "invoke", "picky", "-d", "not json")
    assert out.exit_code == 1 and "invalid_json" in out.output

    # a call its limits stopped failed by the function's doing too (exit 3, with its log),
    # as `--async --wait` reports a timed_out invocation
    spin = "def main(event):\n    print('spinning')\n    while True:\n        pass\n"
    out = cli(tmp_path, *base, "create", "spinner", "-r", "python", "--code", spin,
              "--timeout", "1")  # fmt: skip
    assert out.exit_code == 0, out.output
    out = cli(tmp_path, *base, "invoke", "spinner", "-v", "-o", "table")
    assert out.exit_code == 3, out.output
    assert "timeout: function timed out after 1 s" in out.stderr
    assert "· v1 ·" in out.stderr and "spinning" in out.stderr  # the version, the log tail
    out = cli(tmp_path, *base, "invoke", "spinner", "-o", "json")
    assert out.exit_code == 3 and json.loads(out.stdout)["error"]["code"] == "timeout"
    assert cli(tmp_path, *base, "invoke").exit_code == 2  # usage: NAME missing
    assert cli(tmp_path, *base, "create", "x", "-r", "python").exit_code == 2  # no source
    out = cli(tmp_path, *base, "create", "x", "-r", "cobol", "--code", "x")
    assert out.exit_code == 2 and "unknown runtime 'cobol'" in out.output

    # a refused value is named as the flag typed (was "memory_mb: must be between …");
    # the JSON error stays the API's
    out = cli(tmp_path, *base, "update", "picky", "--memory", "99999", "-o", "json")
    assert out.exit_code == 1 and "Error: 422 validation_error: --memory: must be between" in (
        out.stderr
    )
    assert json.loads(out.stdout)["error"]["message"].startswith("memory_mb: must be between")
    out = cli(tmp_path, *base, "update", "picky", "--timeout", "0")
    assert "validation_error: --timeout: " in out.stderr


def test_every_command_prints_json_or_a_table(make_server, tmp_path):
    server = make_server().start()
    base = ["--url", server.url, "--api-key", server.api_key]
    code = "def main(event):\n    print('hello log')\n    return {'ok': True}\n"
    created = cli(tmp_path, *base, "create", "shown", "-r", "python", "--code", code)
    assert created.exit_code == 0, created.output  # (says why, if the build went wrong)
    assert _json(created)["name"] == "shown"
    run = cli(tmp_path, *base, "invoke", "shown", "-o", "json", "-v", "-d", "{}")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["result"] == {"ok": True}
    assert "hello log" in json.loads(run.stdout)["log_tail"]
    invocation = json.loads(run.stdout)["invocation_id"]
    queued = _json(cli(tmp_path, *base, "invoke", "shown", "--async"))
    for args in (
        ["list"], ["get", "shown"], ["build", "shown"], ["runtimes"],
        ["update", "shown", "--memory", "64"], ["logs", "shown", "--invocation", invocation],
        ["invocations", "get", queued["invocation_id"], "--wait"], ["config", "show"],
        ["invocations", "list", "shown"], ["stats", "shown", "--since", "10m"],
    ):  # fmt: skip
        out = cli(tmp_path, *base, *args, "-o", "json")
        assert out.exit_code == 0, (args, out.output)
        if args[0] == "logs":  # JSON lines, one entry each
            entries = [json.loads(line) for line in out.stdout.splitlines()]
            assert any(e["line"] == "hello log" for e in entries)
        else:
            assert isinstance(json.loads(out.stdout), dict)
        table = cli(tmp_path, *base, *args, "-o", "table")
        assert table.exit_code == 0 and not table.stdout.lstrip().startswith("{"), args
    assert cli(tmp_path, *base, "get", "shown").output.count('"memory_mb": 64') == 1
    recent = _json(cli(tmp_path, *base, "invocations", "list", "shown"))
    by_id = {i["id"]: i for i in recent["invocations"]}
    assert by_id[invocation]["trigger"] == "api" and by_id[invocation]["status"] == "succeeded"
    assert by_id[queued["invocation_id"]]["trigger"] == "async"
    deadline = time.monotonic() + 5  # outcomes reach the stats within the flush interval
    while True:
        stats = _json(cli(tmp_path, *base, "stats", "shown", "-o", "json"))
        if stats["totals"]["invocations"] >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert stats["totals"]["invocations"] == 2 and stats["totals"]["errors"] == 0
    assert sum(v["invocations"] for v in stats["by_version"].values()) == 2
    out = cli(tmp_path, *base, "-o", "table", "list")
    assert "shown" in out.stdout and "python" in out.stdout and "active" in out.stdout


def test_keys_create_a_scoped_key_that_works_then_revoke_it(make_server, tmp_path):
    server = make_server().start()
    admin = ["--url", server.url, "--api-key", server.api_key, "-o", "json"]
    out = cli(tmp_path, *admin, "keys", "create", "reader", "--scope", "read")
    assert out.exit_code == 0, out.output
    created = _json(out)
    reader = ["--url", server.url, "--api-key", created["key"]]
    assert cli(tmp_path, *reader, "list").exit_code == 0
    out = cli(tmp_path, *reader, "create", "x", "-r", "python", "--code", "def main(e): 1")
    assert out.exit_code == 1 and "403 forbidden" in out.output
    listed = _json(cli(tmp_path, *admin, "keys", "list"))
    assert created["id"] in [k["id"] for k in listed["keys"]]
    assert created["key"] not in json.dumps(listed)
    # by the name `keys list` shows beside the id (it was "API key 'reader' not found"),
    # unless two keys have it
    second = _json(cli(tmp_path, *admin, "keys", "create", "reader", "--scope", "read"))
    out = cli(tmp_path, *admin, "keys", "revoke", "reader")
    assert out.exit_code == 2 and "2 are named 'reader'" in out.stderr
    assert cli(tmp_path, *admin, "keys", "revoke", second["id"]).exit_code == 0
    assert _json(cli(tmp_path, *admin, "keys", "revoke", "reader")) == {"revoked": created["id"]}
    time.sleep(1.2)  # revocation reaches every worker within 1 s
    out = cli(tmp_path, *reader, "list")
    assert out.exit_code == 1 and "401" in out.output


def test_the_api_address_or_one_without_http_reaches_the_server(make_server, tmp_path):
    # The server's start line names "the API under /api/v1": a user gave that, and got
    # "no route GET /api/v1/api/v1/functions"; without http://, "missing an 'http://'".
    server = make_server().start()
    bare = server.url.removeprefix("http://")
    for url in (f"{server.url}/api/v1", f"{server.url}/api/v1/", bare):
        out = cli(tmp_path, "--url", url, "--api-key", server.api_key, "list")
        assert out.exit_code == 0, (url, out.output)
    out = cli(tmp_path, "config", "init", "--api-url", f"{bare}/api/v1", "--api-key",
              server.api_key)  # fmt: skip
    assert _json(out)["api_url"] == server.url and _json(out)["check"]["ok"]
    assert cli(tmp_path, "list").exit_code == 0

"""Failures before any server answers: a message and exit 1, never a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api-url", "http://[::1", "list"], "invalid_url"),
        (["--api-url", "http://127.0.0.1:9", "get", "x"], "unreachable"),
        (["--api-url", "ftp://x", "list"], "unsupported protocol"),
        (["--profile", "nope", "list"], "no profile 'nope'"),
        (["mcp", "--api-url", "http://[::1"], "invalid_url"),
        (["--api-key-file", "/nonexistent/key", "list"], "cannot read the API key"),
    ],
)
def test_a_clear_message_and_exit_1(tmp_path, args, message):
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": None, "NIMBUS_API_URL": None,
           "NIMBUS_PROFILE": None, "NIMBUS_API_KEY": None}  # fmt: skip
    out = CliRunner().invoke(main, args, env=env)
    assert out.exit_code == 1, out.output
    assert message in out.output and "Traceback" not in out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)


def test_a_server_not_there_says_what_to_check(tmp_path):
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": None, "NIMBUS_API_URL": None,
           "NIMBUS_PROFILE": None, "NIMBUS_API_KEY": None}  # fmt: skip
    out = CliRunner().invoke(main, ["-o", "table", "--api-url", "http://127.0.0.1:9", "list"],
                             env=env)  # fmt: skip
    assert out.exit_code == 1, out.output
    line = out.stderr.strip()
    assert line.startswith("Error: unreachable: cannot reach http://127.0.0.1:9 ("), line
    assert "nimbus serve" in line and "--api-url" in line


@pytest.mark.parametrize(("context", "said"), [("{bad", "not JSON"), ("[1]", "a JSON object")])
def test_invoke_context_is_checked_as_the_flag_the_user_gave(tmp_path, context, said):
    # the API's answer named its header: "X-Nimbus-Context must be a JSON object"
    args = ["--api-url", "http://127.0.0.1:9", "invoke", "hello", "--context", context]
    out = CliRunner().invoke(main, args, env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": None})
    assert out.exit_code == 2, out.output
    assert "Invalid value for --context: " in out.stderr and said in out.stderr

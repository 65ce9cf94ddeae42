"""The `nimbus` command as a person at a terminal sees it: on a pseudo-terminal, a real
server behind it — a hidden key prompt, the live build line, tables and colours, the
build log of a failed build, and what `invoke -v` adds."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import stat
import subprocess
import time
from pathlib import Path

from tests.e2e.server import NIMBUS

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
GREEN, RED = "\x1b[32m", "\x1b[31m"


def on_terminal(env: dict[str, str], *args: str, answer: str | None = None,
                timeout: float = 180) -> tuple[int, str]:  # fmt: skip
    """`nimbus ARGS` with stdin, stdout and stderr on one pseudo-terminal (its controlling
    terminal, as in a shell); `answer` is typed once a prompt shows. The exit code and
    everything the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: nothing but exec
        os.execve(str(NIMBUS), [str(NIMBUS), *args], env)
    screen, typed = b"", answer is None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
            if not typed and b"API key" in screen:
                os.write(fd, answer.encode() + b"\r")
                typed = True
        else:
            os.kill(pid, 9)
            raise AssertionError(f"nimbus {' '.join(args)} did not end: {screen[-2000:]!r}")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def terminal_env(home: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NIMBUS_", "XDG_"))}
    return {**clean, "HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "120", **extra}


def test_config_init_asks_for_the_key_without_showing_it(make_server, tmp_path):
    server = make_server().start()
    xdg = tmp_path / "xdg"
    env = terminal_env(tmp_path, XDG_CONFIG_HOME=str(xdg))
    code, screen = on_terminal(env, "config", "init", "--api-url", server.url,
                               answer=server.api_key)  # fmt: skip
    assert code == 0, screen
    assert "API key" in screen and server.api_key not in screen  # typed, never echoed
    assert "connected" in screen and not screen.lstrip().startswith("{")
    config_file = xdg / "nimbus" / "config.toml"  # $XDG_CONFIG_HOME is honoured
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert server.api_key in config_file.read_text()

    # a second server's profile, its key from NIMBUS_API_KEY (no prompt, no terminal)
    out = subprocess.run(
        [str(NIMBUS), "config", "init", "-p", "ci", "--api-url", server.url, "-o", "json"],
        env={**env, "NIMBUS_API_KEY": server.api_key}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["check"] == {"ok": True}
    assert config_file.read_text().count(server.api_key) == 2
    code, screen = on_terminal(env, "config", "use", "ci")
    assert code == 0 and "default profile: " in screen and "ci" in screen
    out = subprocess.run([str(NIMBUS), "config", "use", "default", "-o", "json"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0 and json.loads(out.stdout) == {"default_profile": "default"}


def test_a_person_sees_the_build_tables_colours_and_the_failed_builds_log(make_server, tmp_path):
    server = make_server().start()
    env = terminal_env(tmp_path, NIMBUS_API_URL=server.url, NIMBUS_API_KEY=server.api_key)

    code, screen = on_terminal(env, "create", "hello", "--runtime", "python3.11", "--handler",
                               "main.handler", "--code", "def handler(e): return e")  # fmt: skip
    assert code == 0, screen
    assert "building hello v1" in screen  # the live line while the build runs
    assert re.search(r"build .*ready.* in \d+\.\ds", ANSI.sub("", screen))
    assert "created" in screen and f"{GREEN}active" in screen

    code, screen = on_terminal(env, "list")
    plain = ANSI.sub("", screen)
    assert code == 0 and not plain.lstrip().startswith("{")
    assert re.search(r"NAME\s+RUNTIME\s+STATUS", plain)
    assert re.search(r"hello\s+python\s+active\s+v1", plain) and GREEN in screen

    code, screen = on_terminal(env, "invoke", "hello", "--data", '{"name": "World"}', "-v")
    plain = ANSI.sub("", screen)
    assert code == 0, screen
    assert '"name": "World"' in plain  # the result, pretty-printed
    assert re.search(r"invocation inv_\w+ · v1 · \d+\.\d ms", plain)  # -v: id, version, time

    code, screen = on_terminal(env, "create", "broken", "--runtime", "python",
                               "--code", "def main(event):\n    return (\n")  # fmt: skip
    plain = ANSI.sub("", screen)
    assert code == 1, screen
    assert f"{RED}failed" in screen  # the build line ends red
    assert "SyntaxError: '(' was never closed" in plain  # the compiler's own words
    assert 'File "handler.py", line 2' in plain  # from the build log
    assert "Error: the build of v1 failed" in plain and "Traceback" not in plain

"""`nimbus deploy DIR|FILE` and `nimbus logs` against a real server."""

from __future__ import annotations

import json
import subprocess
import time

from click.testing import CliRunner

from cli.main import main
from tests.e2e import wasm as w
from tests.e2e.server import NIMBUS


def test_deploy_a_folder_then_a_new_version_then_a_failed_build(make_server, tmp_path):
    server = make_server().start()
    base = ["--url", server.url, "--api-key", server.api_key]
    folder = tmp_path / "Greeter_App"
    (folder / "lib").mkdir(parents=True)
    (folder / "app.py").write_text(
        "from lib.words import hello\n\ndef main(event):\n    return hello(event['name'])\n"
    )
    (folder / "lib" / "words.py").write_text("def hello(name):\n    return f'hello {name}'\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "junk.pyc").write_bytes(b"\x00\xff")
    runner = CliRunner()

    out = runner.invoke(main, [*base, "deploy", str(folder), "--env", "MODE=test"])
    assert out.exit_code == 0, out.output
    fn = json.loads(out.output)
    assert (fn["name"], fn["runtime"], fn["status"]) == ("greeter-app", "python", "active")
    with server.client() as api:
        code = api.get("/api/v1/functions/greeter-app/code").json()
        assert sorted(code["files"]) == ["app.py", "lib/words.py"]  # no __pycache__
        assert code["handler"] == "app.main"  # the one top-level file
        reply = api.post("/api/v1/functions/greeter-app/invoke", json={"name": "ann"})
        assert reply.json() == "hello ann"

    (folder / "lib" / "words.py").write_text("def hello(name):\n    return f'hi {name}'\n")
    out = runner.invoke(main, [*base, "deploy", "greeter-app", str(folder)])
    assert out.exit_code == 0 and json.loads(out.output)["latest_version"] == 2

    (folder / "app.py").write_text("def main(event):\n    return (\n")
    out = runner.invoke(main, [*base, "-o", "json", "deploy", "greeter-app", str(folder)])
    assert out.exit_code == 1
    record = json.loads(out.stdout)
    assert record["latest_build"]["status"] == "failed" and record["active_version"] == 2
    assert "never closed" in out.stderr and "Traceback" not in out.stderr

    out = runner.invoke(main, [*base, "-o", "table", "deploy", "greeter-app", str(folder)])
    assert out.exit_code == 1
    assert "app.py" in out.stderr and "SyntaxError" in out.stderr  # the build log


def test_logs_follow_prints_new_lines_as_they_come(make_server, tmp_path):
    server = make_server().start()
    base = ["--url", server.url, "--api-key", server.api_key]
    source = tmp_path / "talker.py"
    source.write_text("def main(event):\n    print('said', event['n'])\n    return event\n")
    assert CliRunner().invoke(main, [*base, "deploy", str(source)]).exit_code == 0

    follow = subprocess.Popen(
        [str(NIMBUS), *base, "logs", "talker", "--follow", "-o", "json", "--interval", "0.2"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with server.client() as api:
            for n in range(3):
                api.post("/api/v1/functions/talker/invoke", json={"n": n})
        said, deadline = [], time.monotonic() + 20
        while len(said) < 3 and time.monotonic() < deadline:
            entry = json.loads(follow.stdout.readline())
            if entry["line"].startswith("said"):
                said.append(entry["line"])
        assert said == ["said 0", "said 1", "said 2"]  # in order, none twice
    finally:
        follow.terminate()
        follow.wait(10)


def test_a_wasm_file_is_uploaded_as_it_is(make_server, tmp_path):
    server = make_server().start()
    base = ["--url", server.url, "--api-key", server.api_key]
    module = tmp_path / "echo.wasm"
    module.write_bytes(w.wat(w.ECHO_WAT))
    out = CliRunner().invoke(main, [*base, "deploy", str(module), "--memory", "64"])
    assert out.exit_code == 0, out.output
    fn = json.loads(out.output)
    assert (fn["name"], fn["runtime"], fn["memory_mb"]) == ("echo", "wasm", 64)
    with server.client() as api:
        assert api.get("/api/v1/functions/echo/code").content == module.read_bytes()

"""`nimbus init` writes a function that deploys and answers, for every runtime it offers,
against a real server (the compilers run for real)."""

from __future__ import annotations

import pytest

from cli.templates import TEMPLATES
from tests.e2e.test_cli_versions import Nimbus


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from tests.e2e.server import NimbusProcess

    server = NimbusProcess(tmp_path_factory.mktemp("init") / "data").start()
    yield server
    server.stop()


@pytest.mark.parametrize("runtime", sorted(TEMPLATES))
def test_init_deploy_invoke(served, tmp_path, runtime):
    nimbus = Nimbus(served)
    name = f"init-{runtime}"
    folder = tmp_path / name
    out = nimbus("init", name, "-r", runtime, "--dir", str(folder), output="table")
    assert out.exit_code == 0, out.output
    assert f"nimbus deploy {name} {folder}" in out.output
    assert sorted(p.name for p in folder.iterdir()) == sorted(TEMPLATES[runtime])

    deployed = nimbus("deploy", name, str(folder))
    assert deployed.exit_code == 0, deployed.output  # the build log, if it failed
    assert nimbus.json("get", name)["runtime"] == runtime
    called = nimbus.json("invoke", name, "-d", '{"name": "Ada"}', "-v")
    assert called["error"] is None, called
    assert called["result"]["message"] == "Hello, Ada!"
    assert "greeting Ada" in called["log_tail"]


def test_init_refuses_a_used_folder_and_an_unknown_runtime(tmp_path):
    nimbus = Nimbus.offline()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    out = nimbus("init", "taken", "-r", "python", "--dir", str(tmp_path / "taken"))
    assert out.exit_code == 2 and "not empty" in out.output
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    out = nimbus("init", "x", "-r", "cobol", "--dir", str(tmp_path / "x"))
    assert out.exit_code == 2 and "python" in out.output
    made = nimbus.json("init", "js-fn", "-r", "nodejs", "--dir", str(tmp_path / "js"))
    assert made["runtime"] == "javascript" and made["files"] == ["handler.js"]


def test_init_refuses_a_name_no_function_may_have_and_quotes_the_folder(tmp_path):
    nimbus = Nimbus.offline()
    out = nimbus("init", "My App", "-r", "go", "--dir", str(tmp_path / "app"))
    assert out.exit_code == 2, out.output
    assert "'My App' cannot name a function" in out.output and "(e.g. my-app)" in out.output
    assert not (tmp_path / "app").exists()  # it printed `nimbus deploy My App` and wrote it
    folder = tmp_path / "my app"
    out = nimbus("init", "my-app", "-r", "go", "--dir", str(folder), output="table")
    assert out.exit_code == 0, out.output
    assert f"nimbus deploy my-app '{folder}'" in out.output  # a command that runs as printed

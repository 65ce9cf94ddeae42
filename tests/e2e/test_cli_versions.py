"""`nimbus versions|rollback|history|alias|canary` and invoke targets against a real server;
each effect checked through the REST API, each output as the user sees it."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner

from cli.main import main
from tests.e2e import wasm as w
from tests.e2e.test_canary import Traffic
from tests.e2e.test_observability import deploy, once

CACHE_SEC = 1.1  # every worker sees a record change within 1 s


class Nimbus:
    """`nimbus ARGS` in-process against one server; -o json unless told otherwise."""

    def __init__(self, server) -> None:
        self.base = ["--url", server.url, "--api-key", server.api_key]
        self.runner = CliRunner()

    @classmethod
    def offline(cls) -> Nimbus:
        """For commands that need no server (a dead address, should one be asked)."""
        nimbus = cls.__new__(cls)
        nimbus.base, nimbus.runner = ["--url", "http://127.0.0.1:9"], CliRunner()
        return nimbus

    def __call__(self, *args: str, output: str = "json"):
        return self.runner.invoke(main, [*self.base, "-o", output, *args])

    def json(self, *args: str):
        out = self(*args)
        assert out.exit_code == 0, out.output
        return json.loads(out.stdout)


def two_versions(server, nimbus: Nimbus, name: str, tmp_path, second: str) -> None:
    deploy(server, name, w.constant_wat(b'{"v":1}'))
    module = tmp_path / "second.wasm"
    module.write_bytes(w.wat(second))
    assert nimbus.json("deploy", name, str(module))["latest_version"] == 2


def test_versions_rollback_and_history(make_server, tmp_path):
    server = make_server().start()
    nimbus = Nimbus(server)
    two_versions(server, nimbus, "rolled", tmp_path, w.constant_wat(b'{"v":2}'))

    listed = nimbus.json("versions", "rolled")
    assert [(v["version"], v["active"], v["status"]) for v in listed["versions"]] == [
        (2, True, "ready"),
        (1, False, "ready"),
    ]
    table = nimbus("versions", "rolled", output="table").output
    assert "v2" in table and "v1" in table and "*" in table and "ready" in table
    assert nimbus.json("versions", "rolled", "1")["version"] == 1

    out = nimbus("rollback", "rolled", "1", "--reason", "v2 is wrong", output="table")
    assert out.exit_code == 0, out.output
    assert "rolled serves v1 (was v2)" in out.output
    with server.client() as api:
        assert api.get("/api/v1/functions/rolled").json()["active_version"] == 1
    time.sleep(CACHE_SEC)
    assert nimbus.json("invoke", "rolled") == {"v": 1}

    entries = nimbus.json("history", "rolled")["entries"]
    assert entries[0]["action"] == "rollback" and entries[0]["reason"] == "v2 is wrong"
    assert (entries[0]["from_version"], entries[0]["to_version"]) == (2, 1)
    assert "rollback" in nimbus("history", "rolled", output="table").output

    out = nimbus("rollback", "rolled", "9")
    assert out.exit_code == 1 and json.loads(out.stdout)["error"]["code"] == "not_found"
    assert "404 not_found" in out.output
    out = nimbus("versions", "nope")
    assert out.exit_code == 1 and json.loads(out.stdout)["error"]["code"] == "not_found"
    assert nimbus("rollback", "rolled", "two").exit_code == 2  # a usage error


def test_alias_set_list_delete_and_invoke_through_it(make_server, tmp_path):
    server = make_server().start()
    nimbus = Nimbus(server)
    two_versions(server, nimbus, "aliased", tmp_path, w.constant_wat(b'{"v":2}'))

    out = nimbus("alias", "set", "aliased", "prod", "1", output="table")
    assert out.exit_code == 0 and "created aliased:prod → v1 100%" in out.output
    time.sleep(CACHE_SEC)
    assert nimbus.json("invoke", "aliased:prod") == {"v": 1}
    assert nimbus.json("invoke", "aliased", "--alias", "prod") == {"v": 1}
    assert nimbus.json("invoke", "aliased:2") == {"v": 2}
    verbose = nimbus.json("invoke", "aliased:prod", "-v")
    assert verbose["result"] == {"v": 1} and verbose["version"] == 1
    queued = nimbus.json("invoke", "aliased:prod", "--async", "--wait")
    assert queued["result"] == {"v": 1} and queued["version"] == 1  # fixed at accept time
    assert nimbus("invoke", "aliased:prod", "--async", "-k", "user-1").exit_code == 2

    view = nimbus.json("alias", "set", "aliased", "prod", "1", "--weight", "2=50%")
    assert view["routing"] == {"2": 50.0}
    with server.client() as api:
        assert api.get("/api/v1/functions/aliased/aliases/prod").json()["routing"] == {"2": 50.0}
    listed = nimbus("alias", "list", "aliased", output="table").output
    assert "prod" in listed and "v1 50% · v2 50%" in listed
    time.sleep(CACHE_SEC)
    served = {json.dumps(nimbus.json("invoke", "aliased:prod", "-k", "user-42")) for _ in range(6)}
    assert len(served) == 1  # a routing key stays on one version

    out = nimbus("alias", "set", "aliased", "prod", "latest", output="table")
    assert out.exit_code == 0 and "updated aliased:prod → v2 100%" in out.output
    assert nimbus.json("alias", "get", "aliased", "prod")["routing"] == {}

    # the flag named, not the API's field ("routing.2: a weight is a percentage …")
    out = nimbus("alias", "set", "aliased", "prod", "1", "--weight", "2=120")
    assert out.exit_code == 2 and "'2=120': a weight is above 0% and at most 100%" in out.stderr
    out = nimbus("alias", "set", "aliased", "prod", "1", "--weight", "1=10%")
    assert out.exit_code == 2 and "v1 is VERSION, which takes the rest" in out.stderr
    assert nimbus("alias", "set", "aliased", "prod", "1", "--weight", "2:lots").exit_code == 2
    out = nimbus("alias", "set", "aliased", "prod", "7")
    assert out.exit_code == 1 and json.loads(out.stdout)["error"]["code"] == "not_found"
    out = nimbus("invoke", "aliased", "--alias", "prod", "--version", "1")
    assert out.exit_code == 2

    assert nimbus.json("alias", "delete", "aliased", "prod") == {"deleted": "aliased:prod"}
    with server.client() as api:
        assert api.get("/api/v1/functions/aliased/aliases").json()["aliases"] == []
    time.sleep(CACHE_SEC)
    out = nimbus("invoke", "aliased:prod")
    assert out.exit_code == 1 and json.loads(out.stdout)["error"]["code"] == "not_found"


def test_canary_start_status_abort_and_a_rollback_followed_with_wait(make_server, tmp_path):
    server = make_server().start()
    nimbus = Nimbus(server)
    two_versions(server, nimbus, "canaried", tmp_path, w.FAIL_WAT)
    assert nimbus("alias", "set", "canaried", "prod", "1").exit_code == 0

    view = nimbus.json("canary", "start", "canaried", "prod", "2", "--interval", "1h")
    assert view["canary"]["status"] == "progressing" and view["routing"] == {"2": 10.0}
    status = nimbus("canary", "status", "canaried", "prod", output="table").output
    assert "canary v2 progressing at 10%" in status and "started" in status
    out = nimbus("canary", "start", "canaried", "prod", "2")
    assert out.exit_code == 1 and json.loads(out.stdout)["error"]["code"] == "canary_running"

    aborted = nimbus.json("canary", "abort", "canaried", "prod")
    assert aborted["canary"]["status"] == "aborted"
    assert aborted["version"] == 1 and aborted["routing"] == {}
    with server.client() as api:
        assert api.get("/api/v1/functions/canaried/aliases/prod").json()["routing"] == {}
    assert nimbus("canary", "abort", "canaried", "prod").exit_code == 1  # none in progress
    started = nimbus.json("history", "canaried")["entries"][1]
    assert started["reason"] == "steps 10%, 25%, 50%, 100%, every 3600 s"  # was [10.0, …]

    assert nimbus("canary", "start", "canaried", "prod", "2", "--steps", "ten").exit_code == 2
    # what the API refuses, named as the flag (was "interval_sec: Input should be greater …")
    out = nimbus("canary", "start", "canaried", "prod", "2", "--interval", "1s")
    assert out.exit_code == 2 and "Invalid value for --interval: '1s': from 5s" in out.stderr
    out = nimbus("canary", "start", "canaried", "prod", "2", "--steps", "50,20")
    assert out.exit_code == 2 and "Invalid value for --steps: '50,20'" in out.stderr
    start = ["canary", "start", "canaried", "prod", "2", "--steps", "50", "--interval", "5s",
             "--max-error-rate", "0.2", "--min-invocations", "5", "--wait"]  # fmt: skip
    with Traffic(server, "canaried"):
        out = nimbus(*start)
    assert out.exit_code == 3, out.output  # the new version did not make it
    final = json.loads(out.stdout)
    assert final["canary"]["status"] == "rolled_back" and final["version"] == 1
    assert "error rate" in final["canary"]["reason"]
    assert "rolled_back" in out.stderr  # each decision as it lands
    served = once(server, "GET", "/api/v1/functions/canaried/aliases/prod").json()
    assert served["canary"]["status"] == "rolled_back"
    status = nimbus("canary", "status", "canaried", "prod", output="table")
    assert status.exit_code == 0 and "rolled_back" in status.output
    assert "error rate" in status.output


def test_deploy_then_point_an_alias_or_start_a_canary(make_server, tmp_path):
    server = make_server().start()
    nimbus = Nimbus(server)
    first, second = tmp_path / "v1.wasm", tmp_path / "v2.wasm"
    first.write_bytes(w.wat(w.constant_wat(b'{"v":1}')))
    second.write_bytes(w.wat(w.constant_wat(b'{"v":2}')))

    out = nimbus("deploy", "released", str(first), "--alias", "prod")
    assert out.exit_code == 0, out.output
    deployed = json.loads(out.stdout)  # one document: the record, and the alias it moved
    assert deployed["latest_version"] == 1 and deployed["alias"]["version"] == 1
    with server.client() as api:
        assert api.get("/api/v1/functions/released/aliases/prod").json()["version"] == 1

    out = nimbus("deploy", "released", str(second), "--canary", "prod", output="table")
    assert out.exit_code == 0, out.output
    assert "canary started: released:prod → v2" in out.output
    with server.client() as api:
        prod = api.get("/api/v1/functions/released/aliases/prod").json()
    assert prod["canary"]["status"] == "progressing" and prod["routing"] == {"2": 10.0}

    both = nimbus("deploy", "released", str(second), "--alias", "a", "--canary", "b")
    assert both.exit_code == 2
    assert nimbus("deploy", "released", str(second), "--no-wait", "--alias", "a").exit_code == 2
    with server.client() as api:  # refused before anything was sent: still two versions
        assert api.get("/api/v1/functions/released").json()["latest_version"] == 2

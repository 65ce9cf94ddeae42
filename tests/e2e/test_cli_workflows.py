"""`nimbus workflows` and `nimbus executions` against a real server."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from click.testing import CliRunner

from cli.main import main
from tests.e2e.server import NIMBUS

DOUBLE = "def main(event):\n    return {'n': event['n'] * 2}\n"
DEFINITION = {
    "StartAt": "Double",
    "States": {
        "Double": {"Type": "Task", "Resource": "double", "Next": "Again"},
        "Again": {"Type": "Task", "Resource": "double", "End": True},
    },
}

PAUSE = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}


def with_double(server, tmp_path):
    """`nimbus …` (-o json) against `server`, where the function `double` exists, and the
    path of a workflow definition calling it twice."""
    base = ["--url", server.url, "--api-key", server.api_key, "-o", "json"]
    runner = CliRunner()

    def nimbus(*args: str):
        return runner.invoke(main, [*base, *args])

    assert nimbus("create", "double", "-r", "python", "--code", DOUBLE).exit_code == 0
    asl = tmp_path / "twice.json"
    asl.write_text(json.dumps(DEFINITION))
    return nimbus, asl


def test_deploy_start_follow_and_stop_workflows(make_server, tmp_path):
    server = make_server().start()
    nimbus, asl = with_double(server, tmp_path)
    out = nimbus("workflows", "deploy", "twice", str(asl))
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["version"] == 1
    asl.write_text(json.dumps({**DEFINITION, "Comment": "doubles twice"}))
    assert json.loads(nimbus("workflows", "deploy", "twice", str(asl)).output)["version"] == 2

    out = nimbus("workflows", "start", "twice", "--input", '{"n": 5}', "--wait")
    assert out.exit_code == 0, out.output
    execution = json.loads(out.output)
    assert execution["status"] == "succeeded" and execution["output"] == {"n": 20}

    events = json.loads(nimbus("executions", "history", execution["id"]).output)["events"]
    assert [e["type"] for e in events].count("TaskSucceeded") == 2
    listed = json.loads(nimbus("executions", "list", "twice").output)
    assert [e["id"] for e in listed["executions"]] == [execution["id"]]
    with server.client() as api:
        assert api.get(f"/api/v1/executions/{execution['id']}").json()["output"] == {"n": 20}

    # --data, as `nimbus invoke` spells it, is the input too
    out = nimbus("workflows", "start", "twice", "--data", '{"n": 1}', "--wait")
    assert out.exit_code == 0 and json.loads(out.output)["output"] == {"n": 4}, out.output

    out = nimbus("workflows", "start", "twice", "--input", '{"m": 1}', "--wait")
    assert out.exit_code == 3  # the execution failed (KeyError in the task)
    assert json.loads(out.stdout)["status"] == "failed"

    assert nimbus("workflows", "start", "twice", "--input", "{").exit_code == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"StartAt": "Nowhere", "States": {}}')
    out = nimbus("workflows", "deploy", "broken", str(bad))
    assert out.exit_code == 1 and json.loads(out.stdout)["error"]["code"]

    pause = tmp_path / "pause.json"
    pause.write_text(json.dumps(PAUSE))
    assert nimbus("workflows", "deploy", "pause", str(pause)).exit_code == 0
    waiting = json.loads(nimbus("workflows", "start", "pause").output)
    out = nimbus("executions", "stop", waiting["id"], "--error", "Operator", "--cause", "test")
    assert out.exit_code == 0 and json.loads(out.output)["status"] == "aborted"
    out = nimbus("executions", "get", waiting["id"])
    assert out.exit_code == 3 and json.loads(out.stdout)["error"] == "Operator"
    assert nimbus("workflows", "delete", "pause").exit_code == 0

    listed = json.loads(nimbus("workflows", "list").output)
    assert [w["name"] for w in listed["workflows"]] == ["twice"]
    assert nimbus("workflows", "delete", "twice").exit_code == 0
    with server.client() as api:
        assert api.get("/api/v1/workflows/twice").status_code == 404


def test_watch_an_execution_and_schedule_a_workflow(make_server, tmp_path):
    server = make_server().start()
    nimbus, asl = with_double(server, tmp_path)
    assert nimbus("workflows", "deploy", "twice", str(asl)).exit_code == 0

    out = nimbus("workflows", "start", "twice", "--input", '{"n": 3}', "--watch")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["output"] == {"n": 12}
    events = [line.split(" ", 1)[1] for line in out.stderr.splitlines()]  # after the time
    assert events[0] == "ExecutionStarted" and events[-1] == "ExecutionSucceeded"
    entered = [e for e in events if e.startswith("TaskStateEntered")]
    assert entered == ["TaskStateEntered Double", "TaskStateEntered Again"]  # each once, in order

    failed = json.loads(nimbus("workflows", "start", "twice", "--input", '{"m": 1}').output)
    out = nimbus("executions", "watch", failed["id"])
    assert out.exit_code == 3 and json.loads(out.stdout)["status"] == "failed"
    assert "ExecutionFailed" in out.stderr

    hourly = ["schedules", "create", "twice", "--workflow", "rate(1 hour)", "--event", '{"n": 1}']
    out = nimbus(*hourly)
    assert out.exit_code == 0, out.output
    schedule = json.loads(out.stdout)
    assert schedule["workflow_id"] and schedule["next_run_at"]
    with server.client() as api:
        stored = api.get("/api/v1/workflows/twice/schedules").json()["schedules"]
        assert [(s["id"], s["event"]) for s in stored] == [(schedule["id"], {"n": 1})]
    out = nimbus("schedules", "disable", "twice", schedule["id"], "--workflow")
    assert out.exit_code == 0 and json.loads(out.stdout)["next_run_at"] is None
    with server.client() as api:
        path = f"/api/v1/workflows/twice/schedules/{schedule['id']}"
        assert api.get(path).json()["enabled"] is False
    out = nimbus("schedules", "enable", "twice", schedule["id"], "--workflow")
    assert out.exit_code == 0 and json.loads(out.stdout)["enabled"] is True
    table = nimbus("-o", "table", "schedules", "list", "-W", "twice")
    assert "rate(1 hour)" in table.output
    out = nimbus("schedules", "list", "twice")  # without --workflow: the function "twice"
    assert out.exit_code == 1 and json.loads(out.stdout)["error"]["code"] == "not_found"
    assert nimbus("schedules", "delete", "twice", schedule["id"], "--workflow").exit_code == 0
    with server.client() as api:
        assert api.get("/api/v1/workflows/twice/schedules").json()["total"] == 0


def test_ctrl_c_stops_watching_not_the_execution(make_server, tmp_path):
    server = make_server().start()
    pause = tmp_path / "pause.json"
    pause.write_text(json.dumps(PAUSE))
    base = ["--url", server.url, "--api-key", server.api_key, "-o", "json"]
    deployed = CliRunner().invoke(main, [*base, "workflows", "deploy", "pause", str(pause)])
    assert deployed.exit_code == 0, deployed.output
    watcher = subprocess.Popen(
        [str(NIMBUS), *base, "workflows", "start", "pause", "--watch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(3)  # started, and watching
    watcher.send_signal(signal.SIGINT)
    _, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 1 and "the execution goes on" in err, err
    with server.client() as api:
        running = api.get("/api/v1/workflows/pause/executions").json()["executions"]
        assert [e["status"] for e in running] == ["running"]


def test_a_refused_definition_lists_every_problem(make_server, tmp_path):
    server = make_server().start()
    asl = tmp_path / "broken.json"
    asl.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}))
    base = ["--url", server.url, "--api-key", server.api_key, "-o", "table"]
    out = CliRunner().invoke(main, [*base, "workflows", "deploy", "broken", str(asl)])
    assert out.exit_code == 1
    # the API's message names the first problem "(and 1 more)"; the user saw no more
    assert "(and 1 more)" in out.stderr
    assert "\n  definition.States.A.Next: Next names no state of this machine: 'B'\n" in out.stderr
    assert "\n  definition.States: no terminal state" in out.stderr


def test_deploy_takes_a_workflow_as_the_api_takes_or_gives_it(make_server, tmp_path):
    """A file holding `{"name", "definition"}` (the README's request body, or what
    `workflows get -o json` printed) was refused with "unknown field definition"."""
    server = make_server().start()
    nimbus, _ = with_double(server, tmp_path)
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"name": "twice", "definition": DEFINITION, "description": "x2"}))
    out = nimbus("workflows", "deploy", "twice", str(body))
    assert out.exit_code == 0, out.output
    created = json.loads(out.output)
    assert created["definition"] == DEFINITION and created["description"] == "x2"

    printed = tmp_path / "printed.json"
    printed.write_text(nimbus("workflows", "get", "twice").output)
    out = nimbus("workflows", "deploy", "copy", str(printed), "--description", "a copy")
    assert out.exit_code == 0, out.output
    copy = json.loads(out.output)
    assert copy["name"] == "copy" and copy["definition"] == DEFINITION
    assert copy["description"] == "a copy"
    out = nimbus("workflows", "start", "copy", "--input", '{"n": 3}', "--wait")
    assert out.exit_code == 0 and json.loads(out.output)["output"] == {"n": 12}, out.output

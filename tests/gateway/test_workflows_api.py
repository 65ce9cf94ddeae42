"""Workflows through the Falcon app in-process: CRUD, validation, executions, pinning, stop.

A real Platform on a local store runs the executions (its runner, its sandbox,
Python functions); the kill -9 and multi-server cases are in tests/e2e.
"""

from __future__ import annotations

import time

import orjson
import pytest
from falcon import testing

from gateway.api.app import create_app
from gateway.platform import Platform
from gateway.settings import Settings
from tests.gateway.conftest import KEY
from tests.workflow_examples import FUNCTIONS, nap_task, parallel_example


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("wf"),
        nimbus_api_key=KEY,
        build_poll_sec=0.05,
        preload_runtimes=False,
        workflow_scan_sec=0.2,
        workflow_max_history_events=200,  # the history limit, reachable in a test
    )
    platform = Platform.open(settings)
    platform.start()
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def client(platform) -> testing.TestClient:
    client = testing.TestClient(
        create_app(platform, KEY), headers={"Authorization": f"Bearer {KEY}"}
    )
    for name, code in FUNCTIONS.items():
        made = client.simulate_post(
            "/api/v1/functions?wait=true", json={"name": name, "runtime": "python", "code": code}
        )
        assert made.json["status"] == "active", made.json
    return client


def create(client, name: str, definition, **extra):
    return client.simulate_post(
        "/api/v1/workflows", json={"name": name, "definition": definition, **extra}
    )


def finished(client, execution_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = client.simulate_get(f"/api/v1/executions/{execution_id}").json
        if execution["status"] != "running":
            return execution
        time.sleep(0.05)
    raise AssertionError(f"execution {execution_id} still running")


ADD_THEN_PASS = {
    "StartAt": "Add",
    "States": {
        "Add": {"Type": "Task", "Resource": "add", "ResultPath": "$.sum", "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"total.$": "$.sum.sum"}, "End": True},
    },
}


def test_create_get_list_update_delete(client):
    made = create(client, "crud", ADD_THEN_PASS, description="adds")
    assert made.status_code == 201
    body = made.json
    assert body["id"].startswith("wf_") and body["version"] == 1 and body["name"] == "crud"
    assert made.headers["Location"] == f"/api/v1/workflows/{body['id']}"
    assert client.simulate_get("/api/v1/workflows/crud").json["id"] == body["id"]
    assert (
        client.simulate_get(f"/api/v1/workflows/{body['id']}").json["definition"] == ADD_THEN_PASS
    )
    listed = client.simulate_get("/api/v1/workflows", params={"name": "crud"}).json
    assert listed["total"] == 1 and listed["workflows"][0]["name"] == "crud"

    same = client.simulate_put("/api/v1/workflows/crud", json={"description": "still adds"}).json
    assert same["version"] == 1 and same["description"] == "still adds"
    edited = dict(ADD_THEN_PASS, Comment="v2")
    assert (
        client.simulate_put("/api/v1/workflows/crud", json={"definition": edited}).json["version"]
        == 2
    )

    assert create(client, "crud", ADD_THEN_PASS).status_code == 409
    assert client.simulate_delete("/api/v1/workflows/crud").status_code == 204
    assert client.simulate_get("/api/v1/workflows/crud").status_code == 404
    assert create(client, "crud", ADD_THEN_PASS).status_code == 201  # the name is free again


def test_definition_as_json_text(client):
    import json

    made = create(client, "as-text", json.dumps(ADD_THEN_PASS))
    assert made.status_code == 201 and made.json["definition"] == ADD_THEN_PASS


@pytest.mark.parametrize(
    ("states", "state", "words"),
    [
        ({"A": {"Type": "Pass", "Next": "Nope"}}, "A", "Nope"),
        ({"A": {"Type": "Succeed"}, "B": {"Type": "Pass", "End": True}}, "B", "unreachable"),
        ({"A": {"Type": "Task", "Resource": "no-such-fn", "End": True}}, "A", "unknown function"),
        ({"A": {"Type": "Pass", "OutputPath": "$.[", "End": True}}, "A", "OutputPath"),
        (
            {
                "A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Equals": 1, "Next": "B"}]},
                "B": {"Type": "Succeed"},
            },
            "A",
            "unknown comparison operator Equals",
        ),
    ],
)
def test_validation_errors_name_the_state(client, states, state, words):
    resp = create(client, "invalid", {"StartAt": "A", "States": states})
    assert resp.status_code == 422
    error = resp.json["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["state"] == state
    assert words in error["details"][0]["message"] and state in error["message"]


def test_resources_name_a_version_or_alias_with_the_one_target_parser(client):
    task = {"Type": "Task", "Resource": "add:1", "End": True}
    assert create(client, "pinned-task", {"StartAt": "T", "States": {"T": task}}).status_code == 201
    task["Resource"] = "add:Not_A_Label"
    resp = create(client, "bad-target", {"StartAt": "T", "States": {"T": task}})
    assert resp.status_code == 422
    detail = resp.json["error"]["details"][0]
    assert detail["state"] == "T" and detail["field"] == "definition.States.T.Resource"


def test_no_terminal_state_is_422(client):
    looping = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}}
    resp = create(client, "loop", looping)
    assert resp.status_code == 422 and "no terminal state" in resp.json["error"]["message"]


def test_bad_bodies(client):
    assert create(client, "Bad Name", ADD_THEN_PASS).status_code == 422
    assert create(client, "x", "{not json").status_code == 422
    resp = client.simulate_post("/api/v1/workflows", body=b"{", content_type="application/json")
    assert resp.status_code == 400
    assert client.simulate_post("/api/v1/workflows/nope/executions", json={}).status_code == 404
    assert client.simulate_get("/api/v1/executions/ex_nope").status_code == 404


def test_execution_runs_to_its_output(client):
    assert create(client, "adder", ADD_THEN_PASS).status_code == 201
    started = client.simulate_post("/api/v1/workflows/adder/executions", json={"a": 2, "b": 5})
    assert started.status_code == 202
    assert started.json["status"] == "running" and started.json["id"].startswith("ex_")
    assert started.headers["Location"] == f"/api/v1/executions/{started.json['id']}"
    done = finished(client, started.json["id"])
    assert done["status"] == "succeeded" and done["output"] == {"total": 7}
    assert done["workflow"]["name"] == "adder" and done["workflow_version"] == 1
    assert done["input"] == {"a": 2, "b": 5} and done["stopped_at"]
    listed = client.simulate_get("/api/v1/workflows/adder/executions").json
    assert listed["total"] == 1 and listed["executions"][0]["id"] == started.json["id"]
    history = client.simulate_get(f"/api/v1/executions/{started.json['id']}/history").json
    types = [event["type"] for event in history["events"]]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert types.count("TaskSucceeded") == 1 and "PassStateExited" in types


def test_failure_names_the_function_error(client):
    failing = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "boom", "End": True}}}
    assert create(client, "fails", failing).status_code == 201
    started = client.simulate_post("/api/v1/workflows/fails/executions", json={})
    done = finished(client, started.json["id"])
    assert (done["status"], done["error"], done["cause"]) == ("failed", "ValueError", "bad input")


def test_an_edit_does_not_change_a_running_execution(client):
    waiting = {
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Seconds": 1, "Next": "Which"},
            "Which": {"Type": "Pass", "Result": "version 1", "End": True},
        },
    }
    assert create(client, "pinned", waiting).status_code == 201
    started = client.simulate_post("/api/v1/workflows/pinned/executions", json={}).json
    waiting["States"]["Which"]["Result"] = "version 2"
    assert (
        client.simulate_put("/api/v1/workflows/pinned", json={"definition": waiting}).json[
            "version"
        ]
        == 2
    )
    done = finished(client, started["id"])
    assert done["output"] == "version 1" and done["workflow_version"] == 1
    again = client.simulate_post("/api/v1/workflows/pinned/executions", json={}).json
    assert finished(client, again["id"])["output"] == "version 2"


def test_stop_aborts_a_waiting_execution(client):
    long_wait = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    assert create(client, "stoppable", long_wait).status_code == 201
    started = client.simulate_post("/api/v1/workflows/stoppable/executions", json={}).json
    time.sleep(0.3)  # let a runner take it into its Wait
    stopped = client.simulate_post(
        f"/api/v1/executions/{started['id']}/stop",
        json={"error": "Operator", "cause": "changed my mind"},
    )
    assert stopped.status_code == 200
    assert (stopped.json["status"], stopped.json["error"]) == ("aborted", "Operator")
    again = client.simulate_post(f"/api/v1/executions/{started['id']}/stop", json={})
    assert again.status_code == 409
    history = client.simulate_get(f"/api/v1/executions/{started['id']}/history").json["events"]
    assert history[-1]["type"] == "ExecutionAborted"
    time.sleep(0.5)  # no runner brings it back
    assert client.simulate_get(f"/api/v1/executions/{started['id']}").json["status"] == "aborted"


def test_execution_input_limits(client):
    assert create(client, "limits", ADD_THEN_PASS).status_code == 201
    too_big = b'{"a": "' + b"x" * (256 * 1024) + b'"}'
    resp = client.simulate_post(
        "/api/v1/workflows/limits/executions", body=too_big, content_type="application/json"
    )
    assert resp.status_code == 413
    resp = client.simulate_post(
        "/api/v1/workflows/limits/executions", body=b"{nope", content_type="application/json"
    )
    assert resp.status_code == 400


def test_a_task_invocation_is_logged_with_trigger_workflow_and_the_execution(client):
    assert create(client, "logged", ADD_THEN_PASS).status_code == 201
    started = client.simulate_post("/api/v1/workflows/logged/executions", json={"a": 1, "b": 1})
    execution_id = started.json["id"]
    assert finished(client, execution_id)["status"] == "succeeded"
    events = client.simulate_get(f"/api/v1/executions/{execution_id}/history").json["events"]
    invocation_id = next(e for e in events if e["type"] == "TaskSucceeded")["details"][
        "invocation_id"
    ]
    logs = client.simulate_get(
        "/api/v1/functions/add/logs", params={"invocation_id": invocation_id}
    ).json["entries"]
    end = next(entry["line"] for entry in logs if entry["line"].startswith("END"))
    assert "trigger=workflow" in end and f"source={execution_id}" in end
    metrics = client.simulate_get("/metrics").text
    assert 'function="add"' in metrics and 'trigger="workflow"' in metrics


def test_task_timeout_seconds_is_a_catchable_states_timeout(client):
    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": nap_task(
                3,
                TimeoutSeconds=1,
                End=True,
                Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "TooSlow"}],
            ),
            "TooSlow": {"Type": "Pass", "Result": "gave up", "End": True},
        },
    }
    assert create(client, "task-timeout", definition).status_code == 201
    started = client.simulate_post("/api/v1/workflows/task-timeout/executions", json={}).json
    done = finished(client, started["id"])
    assert (done["status"], done["output"]) == ("succeeded", "gave up")
    events = client.simulate_get(f"/api/v1/executions/{started['id']}/history").json["events"]
    assert [e["type"] for e in events if e["type"].startswith("TaskTimed")] == ["TaskTimedOut"]


def test_definition_timeout_seconds_times_the_execution_out(client):
    definition = {
        "TimeoutSeconds": 1,
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}},
    }
    assert create(client, "exec-timeout", definition).status_code == 201
    started = client.simulate_post("/api/v1/workflows/exec-timeout/executions", json={}).json
    done = finished(client, started["id"], timeout=10)
    assert (done["status"], done["error"]) == ("timed_out", "States.Timeout")


def test_stop_during_a_task_wins_over_the_runner(client):
    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": nap_task(1, Next="After"),
            "After": {"Type": "Pass", "Result": "should not run", "End": True},
        },
    }
    assert create(client, "stop-mid-task", definition).status_code == 201
    started = client.simulate_post("/api/v1/workflows/stop-mid-task/executions", json={}).json
    path = f"/api/v1/executions/{started['id']}"
    deadline = time.monotonic() + 10
    while not any(
        e["type"] == "TaskStarted" for e in client.simulate_get(path + "/history").json["events"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.simulate_post(path + "/stop", json={}).json["status"] == "aborted"
    time.sleep(1.5)  # the nap ends; the runner's write is refused
    assert client.simulate_get(path).json["status"] == "aborted"
    types = [e["type"] for e in client.simulate_get(path + "/history").json["events"]]
    assert types[-1] == "ExecutionAborted" and "PassStateEntered" not in types


def test_a_map_of_large_items_keeps_its_whole_history(client, platform):
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Echo",
                    "States": {"Echo": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    assert create(client, "big-map", definition).status_code == 201
    items = [f"{i}:" + "x" * 10_000 for i in range(20)]  # 200 KB in, ~800 KB of events
    started = client.simulate_post("/api/v1/workflows/big-map/executions", json=items).json
    done = finished(client, started["id"])
    assert done["output"] == items
    events = client.simulate_get(f"/api/v1/executions/{started['id']}/history").json["events"]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert sum(e["type"] == "MapIterationSucceeded" for e in events) == 20
    record = platform.workflows.repo.execution(started["id"])[0]
    assert record.history_pages >= 2  # sealed early by size, not only every 100 events


# -- limits ---------------------------------------------------------------------------


def test_a_definition_over_1000_states_is_422_naming_the_limit(client):
    states = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(1000)}
    states["S1000"] = {"Type": "Succeed"}
    resp = create(client, "too-many-states", {"StartAt": "S0", "States": states})
    assert resp.status_code == 422
    assert any("1001 states; at most 1000" in d["message"] for d in resp.json["error"]["details"])
    del states["S1000"]
    states["S999"] = {"Type": "Succeed"}
    made = create(client, "a-thousand-states", {"StartAt": "S0", "States": states})
    assert made.status_code == 201


def test_an_endless_loop_fails_at_the_history_limit(client):
    loop = {
        "StartAt": "Count",
        "States": {
            "Count": {"Type": "Pass", "Next": "Done?"},
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "Done"}],
                "Default": "Count",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    assert create(client, "endless", loop).status_code == 201
    started = client.simulate_post("/api/v1/workflows/endless/executions", json={}).json
    done = finished(client, started["id"])
    assert (done["status"], done["error"]) == ("failed", "States.Runtime")
    assert done["cause"] == "the history passed 200 events"
    events = client.simulate_get(f"/api/v1/executions/{started['id']}/history").json["events"]
    assert 200 < len(events) <= 205 and events[-1]["type"] == "ExecutionFailed"


def test_a_state_output_over_256_kb_fails_with_data_limit_exceeded(client):
    doubled = {
        "StartAt": "Double",
        "States": {"Double": {"Type": "Pass", "Parameters": {"a.$": "$", "b.$": "$"}, "End": True}},
    }
    assert create(client, "doubler", doubled).status_code == 201
    data = {"text": "x" * 200_000}  # under the 256 KB input limit; twice that is over
    started = client.simulate_post("/api/v1/workflows/doubler/executions", json=data).json
    done = finished(client, started["id"])
    assert (done["status"], done["error"]) == ("failed", "States.DataLimitExceeded")
    assert "262144" in done["cause"], done["cause"]


def test_waiting_executions_hold_no_driver(client, platform):
    long_wait = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    assert create(client, "sleepers", long_wait).status_code == 201
    drivers = platform.settings.workflow_concurrency  # executions a worker drives at once
    sleepers = [
        client.simulate_post("/api/v1/workflows/sleepers/executions", json={}).json["id"]
        for _ in range(drivers + 4)
    ]
    deadline = time.monotonic() + 30
    for execution_id in sleepers:
        path = f"/api/v1/executions/{execution_id}/history"
        while not any(
            e["type"] == "WaitScheduled" for e in client.simulate_get(path).json["events"]
        ):
            assert time.monotonic() < deadline, execution_id
            time.sleep(0.05)
    # More executions sleep than there are drivers, and a new one still runs at once.
    assert create(client, "not-blocked", ADD_THEN_PASS).status_code == 201
    started = client.simulate_post(
        "/api/v1/workflows/not-blocked/executions", json={"a": 1, "b": 2}
    )
    assert finished(client, started.json["id"], timeout=15)["output"] == {"total": 3}
    for execution_id in sleepers:
        stopped = client.simulate_post(f"/api/v1/executions/{execution_id}/stop", json={})
        assert stopped.json["status"] == "aborted"
    listed = client.simulate_get(
        "/api/v1/workflows/sleepers/executions", params={"status": "aborted", "limit": 5}
    ).json
    assert listed["total"] == len(sleepers) and len(listed["executions"]) == 5
    assert {e["status"] for e in listed["executions"]} == {"aborted"}
    bad = client.simulate_get("/api/v1/workflows/sleepers/executions", params={"status": "done"})
    assert bad.status_code == 422 and bad.json["error"]["details"][0]["field"] == "status"


def test_a_parallel_state_retries_and_catches_a_failed_branch(client):
    definition = parallel_example(
        {"Type": "Task", "Resource": "add", "End": True},
        {"Type": "Task", "Resource": "boom", "End": True},
    )
    lookup = definition["States"]["LookupCustomerInfo"]
    lookup["Retry"] = [{"ErrorEquals": ["ValueError"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    lookup["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "Fallback", "ResultPath": "$.error"}]
    lookup.pop("End")
    lookup["Next"] = "Fallback"  # the Catch's target is also reachable on success
    definition["States"]["Fallback"] = {"Type": "Pass", "End": True}
    assert create(client, "parallel-caught", definition).status_code == 201
    started = client.simulate_post(
        "/api/v1/workflows/parallel-caught/executions", json={"a": 1, "b": 2}
    ).json
    done = finished(client, started["id"])
    assert done["status"] == "succeeded"
    assert done["output"] == {
        "a": 1,
        "b": 2,
        "error": {"Error": "ValueError", "Cause": "bad input"},
    }
    events = client.simulate_get(f"/api/v1/executions/{started['id']}/history").json["events"]
    boom_runs = [e for e in events if e["type"] == "TaskFailed" and e["state"] == "LookupPhone"]
    assert len(boom_runs) == 2  # the first run and one retry of the whole Parallel state
    assert [e["type"] for e in events if e["type"].startswith("Retry")] == ["RetryScheduled"]


def test_a_map_state_catches_a_failed_item(client):
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "StartAt": "Check",
                    "States": {
                        "Check": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$", "NumericGreaterThan": 2, "Next": "Bad"}],
                            "Default": "Good",
                        },
                        "Good": {"Type": "Succeed"},
                        "Bad": {"Type": "Fail", "Error": "TooBig", "Cause": "an item over 2"},
                    },
                },
                "Catch": [{"ErrorEquals": ["TooBig"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    assert create(client, "map-caught", definition).status_code == 201
    for items, output in (
        ([1, 2], [1, 2]),
        ([1, 3], {"Error": "TooBig", "Cause": "an item over 2"}),
    ):
        started = client.simulate_post(
            "/api/v1/workflows/map-caught/executions", json={"items": items}
        ).json
        done = finished(client, started["id"])
        assert (done["status"], done["output"]) == ("succeeded", output)


def test_task_resources_run_the_version_or_alias_they_name(client):
    first = "def main(event):\n    return 'v1'\n"
    made = client.simulate_post(
        "/api/v1/functions?wait=true",
        json={"name": "versioned", "runtime": "python", "code": first},
    )
    assert made.json["status"] == "active", made.json
    second = {"code": first.replace("v1", "v2")}
    assert (
        client.simulate_put("/api/v1/functions/versioned?wait=true", json=second).json[
            "latest_version"
        ]
        == 2
    )
    alias = client.simulate_post(
        "/api/v1/functions/versioned/aliases", json={"name": "stable", "version": 1}
    )
    assert alias.status_code == 201, alias.json
    states = {
        "Latest": {"Type": "Task", "Resource": "versioned", "ResultPath": "$.latest",
                   "Next": "One"},
        "One": {"Type": "Task", "Resource": "versioned:1", "ResultPath": "$.one",
                "Next": "Stable"},
        "Stable": {"Type": "Task", "Resource": "versioned:stable", "ResultPath": "$.stable",
                   "End": True},
    }  # fmt: skip
    assert (
        create(client, "pinned-tasks", {"StartAt": "Latest", "States": states}).status_code == 201
    )
    started = client.simulate_post("/api/v1/workflows/pinned-tasks/executions", json={}).json
    done = finished(client, started["id"])
    assert done["output"] == {"latest": "v2", "one": "v1", "stable": "v1"}


def test_json_nested_deeper_than_a_record_holds_is_422(client):
    """A record is written with pydantic, which refuses to serialize past ~255 levels, and
    json.loads of a definition string recursed past Python's limit: each was a 500."""
    deep = 300 * "[" + "1" + 300 * "]"
    definition = '{"StartAt":"A","States":{"A":{"Type":"Pass","Parameters":{"x":' + deep
    definition += '},"End":true}}}'
    for made in (
        create(client, "deep", orjson.loads(definition)),
        create(client, "deep", definition),
        create(client, "deep", 5000 * "[" + 5000 * "]"),
    ):
        assert made.status_code == 422, made.text
    assert create(client, "shallow", ADD_THEN_PASS).status_code == 201
    started = client.simulate_post("/api/v1/workflows/shallow/executions", body=deep,
                                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert started.status_code == 422, started.text


def test_data_growing_past_what_a_record_holds_fails_the_execution_at_once(client):
    """A loop that wraps its data one level a step: past MAX_JSON_DEPTH the execution's
    record could not be written; its driver crashed on every claim until the attempts ran
    out. Now the step fails with States.DataLimitExceeded (machine.check_size)."""
    wrap = {"StartAt": "Wrap", "States": {
        "Wrap": {"Type": "Pass", "Parameters": {"n.$": "$"}, "Next": "Again"},
        "Again": {"Type": "Choice", "Default": "Wrap", "Choices": [
            {"Variable": "$.stop", "IsPresent": True, "Next": "Done"}]},
        "Done": {"Type": "Succeed"}}}  # fmt: skip
    assert create(client, "wrapper", wrap).status_code == 201
    deep = 120 * "[" + "1" + 120 * "]"
    started = client.simulate_post("/api/v1/workflows/wrapper/executions", body=deep,
                                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert started.status_code == 202, started.text
    execution = finished(client, started.json["id"], timeout=20)
    assert (execution["status"], execution["error"]) == ("failed", "States.DataLimitExceeded")
    assert "nests deeper than" in execution["cause"]


def test_a_task_result_nested_too_deep_fails_the_execution_at_once(client):
    """orjson writes 254 levels at most: sizing such a result raised TypeError, the driver
    crashed on every claim until its attempts ran out."""
    code = "def main(event, context):\n    v = []\n    for _ in range(299):\n        v = [v]\n"
    body = {"name": "deepres", "runtime": "python", "code": code + "    return v\n"}
    made = client.simulate_post("/api/v1/functions?wait=true", json=body)
    assert made.json["status"] == "active", made.text
    task = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "deepres", "End": True}}}
    assert create(client, "deeptask", task).status_code == 201
    started = client.simulate_post("/api/v1/workflows/deeptask/executions", json={})
    execution = finished(client, started.json["id"], timeout=20)
    assert (execution["status"], execution["error"]) == ("failed", "States.DataLimitExceeded")
    assert "nests deeper than" in execution["cause"]

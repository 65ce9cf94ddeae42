"""Workflows through a real `nimbus serve`: Step Functions examples, overlap, kill -9.

The definitions follow AWS's Step Functions documentation with only their
`Resource` changed. Timings are read from the execution's history, not from
wall-clock bounds on the test.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime

import httpx
import pytest

from tests.workflow_examples import (
    FUNCTIONS,
    catch_example,
    choice_example,
    nap_task,
    parallel_example,
)

# Short leases and scans, so a dead server's executions are taken over in seconds.
ENV = {"WORKFLOW_LEASE_SEC": "2", "WORKFLOW_SCAN_SEC": "0.2", "PRELOAD_RUNTIMES": "false"}


def deploy(api: httpx.Client) -> None:
    for name, code in FUNCTIONS.items():
        made = api.post(
            "/api/v1/functions?wait=true", json={"name": name, "runtime": "python", "code": code}
        )
        assert made.status_code == 201 and made.json()["status"] == "active", made.text


def start(api: httpx.Client, name: str, definition: dict, data=None) -> str:
    made = api.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert made.status_code == 201, made.text
    started = api.post(f"/api/v1/workflows/{name}/executions", json=data or {})
    assert started.status_code == 202, started.text
    return started.json()["id"]


def finished(api: httpx.Client, execution_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = api.get(f"/api/v1/executions/{execution_id}").json()
        if execution["status"] != "running":
            return execution
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_id} still running after {timeout} s")


def history(api: httpx.Client, execution_id: str) -> list[dict]:
    return api.get(f"/api/v1/executions/{execution_id}/history").json()["events"]


def wait_for_event(api: httpx.Client, execution_id: str, kind: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in history(api, execution_id):
            if event["type"] == kind:
                return event
        time.sleep(0.05)
    raise AssertionError(f"no {kind} event in {execution_id}")


def at(event: dict) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


def task_spans(events: list[dict]) -> dict[int, tuple[float, float]]:
    """Per branch: when its Task started and when it succeeded."""
    started = {e["branch"]: at(e) for e in events if e["type"] == "TaskStarted"}
    return {
        e["branch"]: (started[e["branch"]], at(e)) for e in events if e["type"] == "TaskSucceeded"
    }


def overlap(spans: list[tuple[float, float]]) -> bool:
    """Every pair of spans overlaps: each started before any other finished."""
    return max(begin for begin, _ in spans) < min(end for _, end in spans)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.e2e.server import NimbusProcess

    proc = NimbusProcess(tmp_path_factory.mktemp("workflows") / "data", ENV).start()
    with proc.client() as api:
        deploy(api)
    yield proc
    proc.stop()


@pytest.fixture
def api(server):
    with server.client() as client:
        yield client


def test_retry_with_backoff_then_catch_to_a_fallback(api):
    # "Handling error conditions": retry a custom error, then catch everything.
    definition = catch_example("always-fails")
    execution_id = start(api, "catch-example", definition, {"user": "ada"})
    done = finished(api, execution_id)
    assert done["status"] == "succeeded"
    assert done["output"]["fallback"] == "This is a fallback from any error"
    assert done["output"]["error"]["Error"] == "CustomError"
    assert done["output"]["user"] == "ada"
    events = history(api, execution_id)
    failures = [at(e) for e in events if e["type"] == "TaskFailed"]
    retries = [e["details"]["delay_sec"] for e in events if e["type"] == "RetryScheduled"]
    assert len(failures) == 3 and retries == [1.0, 2.0]  # the first try and two retries
    gaps = [b - a for a, b in itertools.pairwise(failures)]
    assert gaps[0] >= 1.0 and gaps[1] >= 2.0  # the backoff was waited out


def test_choice_example(api):
    in_twenties = {
        "Type": "Task",
        "Resource": "add",
        "Parameters": {"a.$": "$.value", "b": 100},
        "End": True,
    }
    definition = choice_example(in_twenties)
    made = api.post("/api/v1/workflows", json={"name": "choice", "definition": definition})
    assert made.status_code == 201, made.text
    cases = [
        ({"type": "Public"}, "public"),
        ({"type": "Private", "value": 0}, "zero"),
        ({"type": "Private", "value": 25}, {"sum": 125}),
    ]
    for data, output in cases:
        started = api.post("/api/v1/workflows/choice/executions", json=data).json()
        assert finished(api, started["id"])["output"] == output
    started = api.post(
        "/api/v1/workflows/choice/executions", json={"type": "Private", "value": 5}
    ).json()
    done = finished(api, started["id"])
    assert (done["status"], done["error"], done["cause"]) == (
        "failed",
        "DefaultStateError",
        "No Matches!",
    )


def test_parallel_branches_overlap(api):
    definition = parallel_example(nap_task(1, "address", End=True), nap_task(1, "phone", End=True))
    execution_id = start(api, "parallel-example", definition)
    done = finished(api, execution_id)
    assert done["output"] == [{"napped": 1, "tag": "address"}, {"napped": 1, "tag": "phone"}]
    spans = task_spans(history(api, execution_id))
    assert len(spans) == 2 and overlap(list(spans.values())), spans


def test_map_items_overlap_bounded_by_max_concurrency(api):
    definition = {
        "StartAt": "ProcessAll",
        "States": {
            "ProcessAll": {
                "Type": "Map",
                "ItemsPath": "$.detail.shipped",
                "MaxConcurrency": 2,
                "ItemSelector": {"seconds": 1, "tag.$": "$$.Map.Item.Value.prod"},
                "ItemProcessor": {
                    "StartAt": "Ship",
                    "States": {
                        "Ship": {
                            "Type": "Task",
                            "Resource": "nap",
                            "ResultSelector": {"prod.$": "$.tag"},
                            "End": True,
                        }
                    },
                },
                "ResultPath": "$.detail.shipped",
                "End": True,
            }
        },
    }
    items = [{"prod": p} for p in ("R31", "S39", "R40", "R41")]
    execution_id = start(api, "map-example", definition, {"detail": {"shipped": items}})
    done = finished(api, execution_id)
    assert done["output"]["detail"]["shipped"] == items  # in item order
    spans = sorted(task_spans(history(api, execution_id)).values())
    assert len(spans) == 4
    assert overlap(spans[:2]) and overlap(spans[2:])  # two at a time …
    assert spans[2][0] >= min(end for _, end in spans[:2])  # … and never a third


# -- kill -9 -------------------------------------------------------------------------


def test_kill_during_a_wait_resumes_at_the_original_time(make_server):
    server = make_server(ENV).start()
    definition = {
        "StartAt": "Add",
        "States": {
            "Add": {"Type": "Task", "Resource": "add", "ResultPath": "$.added", "Next": "Pause"},
            "Pause": {"Type": "Wait", "Seconds": 6, "Next": "Done"},
            "Done": {"Type": "Pass", "Parameters": {"total.$": "$.added.sum"}, "End": True},
        },
    }
    with server.client() as api:
        deploy(api)
        execution_id = start(api, "waits", definition, {"a": 20, "b": 22})
        until = wait_for_event(api, execution_id, "WaitScheduled")["details"]["until"]
    server.kill()
    again = make_server(ENV, data_dir=server.data_dir).start()
    ready_at = time.time()
    with again.client() as api:
        done = finished(api, execution_id)
        assert (done["status"], done["output"]) == ("succeeded", {"total": 42})
        events = history(api, execution_id)
    exited = at(next(e for e in events if e["type"] == "WaitStateExited"))
    # its original end (or the restart, if the machine took longer to start the server
    # than the Wait had left), never 6 s after the restart
    assert until <= exited < max(until, ready_at) + 1.5
    assert [e["details"]["until"] for e in events if e["type"] == "WaitScheduled"] == [until]
    assert sum(e["type"] == "TaskStarted" for e in events) == 1  # Add did not run again


def test_kill_during_a_task_runs_only_that_task_again(make_server):
    server = make_server(ENV).start()
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Task", "Resource": "add", "ResultPath": "$.first", "Next": "Slow"},
            "Slow": nap_task(2, "slow", ResultPath="$.slow", End=True),
        },
    }
    with server.client() as api:
        deploy(api)
        execution_id = start(api, "tasks", definition, {"a": 1, "b": 2})
        deadline = time.monotonic() + 30
        while not any(
            e["type"] == "TaskStarted" and e["state"] == "Slow" for e in history(api, execution_id)
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    server.kill()  # mid-Task: the nap takes 2 s
    again = make_server(ENV, data_dir=server.data_dir).start()
    with again.client() as api:
        done = finished(api, execution_id)
        events = history(api, execution_id)
    assert done["status"] == "succeeded"
    assert done["output"] == {
        "a": 1,
        "b": 2,
        "first": {"sum": 3},
        "slow": {"napped": 2, "tag": "slow"},
    }
    by_state = {
        state: [
            e["type"]
            for e in events
            if e["state"] == state
            and e["type"].startswith("Task")
            and e["type"] not in ("TaskStateEntered", "TaskStateExited")
        ]
        for state in ("First", "Slow")
    }
    assert by_state["First"] == ["TaskScheduled", "TaskStarted", "TaskSucceeded"]
    # the Task in flight at the kill ran again; none completed twice
    assert by_state["Slow"] == ["TaskScheduled", "TaskStarted", "TaskStarted", "TaskSucceeded"]
    resumed = [e for e in events if e["type"] == "TaskStarted" and e["state"] == "Slow"][1]
    assert resumed["details"]["resumed"] is True
    assert events[-1]["type"] == "ExecutionSucceeded"


@pytest.mark.s3
def test_another_replica_continues_the_execution_of_a_dead_one(make_server, e2e_seaweedfs):
    from tests.e2e.conftest import s3_env

    env = {**s3_env(e2e_seaweedfs), **ENV}  # two servers, one S3 store
    servers = [make_server(env).start(), make_server(env).start()]
    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": nap_task(3, "x", Next="Pause"),
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Add"},
            "Add": {
                "Type": "Task",
                "Resource": "add",
                "Parameters": {"a": 40, "b": 2},
                "End": True,
            },
        },
    }
    with servers[0].client() as api:
        deploy(api)
        execution_id = start(api, "replicas", definition)
        owner = wait_for_event(api, execution_id, "ExecutionRunning")["details"]["owner"]
        wait_for_event(api, execution_id, "TaskStarted")
    # an owner is host-pid-random: kill the server whose worker holds the execution
    holder = next(s for s in servers if any(f"-{pid}-" in owner for pid in s.worker_pids()))
    survivor = servers[1 - servers.index(holder)]
    holder.kill()
    with survivor.client() as api:
        done = finished(api, execution_id)
        events = history(api, execution_id)
    assert (done["status"], done["output"]) == ("succeeded", {"sum": 42})
    claimed = [e["details"]["owner"] for e in events if e["type"] == "ExecutionClaimed"]
    assert claimed and owner not in claimed  # the other server's workers finished it
    survivors = survivor.worker_pids()
    assert all(any(f"-{pid}-" in o for pid in survivors) for o in claimed)
    assert sum(e["type"] == "TaskSucceeded" for e in events) == 2


def test_sigterm_lets_the_task_in_flight_finish_and_hands_the_execution_back(make_server):
    server = make_server(ENV).start()
    definition = {
        "StartAt": "Slow",
        "States": {
            "Slow": nap_task(2, "t", Next="Add"),
            "Add": {"Type": "Task", "Resource": "add", "Parameters": {"a": 1, "b": 1}, "End": True},
        },
    }
    with server.client() as api:
        deploy(api)
        execution_id = start(api, "graceful", definition)
        wait_for_event(api, execution_id, "TaskStarted")
    assert server.stop() == 0  # SIGTERM while the nap runs
    again = make_server(ENV, data_dir=server.data_dir).start()
    with again.client() as api:
        done = finished(api, execution_id)
        events = history(api, execution_id)
    assert (done["status"], done["output"]) == ("succeeded", {"sum": 2})
    task_events = ("TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskFailed")
    slow = [e["type"] for e in events if e["state"] == "Slow" and e["type"] in task_events]
    assert slow == ["TaskScheduled", "TaskStarted", "TaskSucceeded"]  # it finished, once


def test_an_edit_while_running_leaves_the_execution_on_its_version(api):
    definition = {
        "StartAt": "Pause",
        "States": {
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Which"},
            "Which": {"Type": "Pass", "Result": "first definition", "End": True},
        },
    }
    execution_id = start(api, "edited", definition)
    definition["States"]["Which"]["Result"] = "second definition"
    definition["States"]["Pause"]["Seconds"] = 0
    edited = api.put("/api/v1/workflows/edited", json={"definition": definition})
    assert edited.status_code == 200 and edited.json()["version"] == 2
    done = finished(api, execution_id)
    assert (done["output"], done["workflow_version"]) == ("first definition", 1)
    later = api.post("/api/v1/workflows/edited/executions", json={}).json()
    assert (finished(api, later["id"])["output"], later["workflow_version"]) == (
        "second definition",
        2,
    )


@pytest.mark.parametrize(
    ("states", "state", "problem"),
    [
        ({"A": {"Type": "Pass", "Next": "Missing"}}, "A", "names no state"),
        ({"A": {"Type": "Succeed"}, "Lost": {"Type": "Pass", "End": True}}, "Lost", "unreachable"),
        (
            {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}},
            None,
            "no terminal state",
        ),
        ({"A": {"Type": "Task", "Resource": "nobody", "End": True}}, "A", "unknown function"),
        ({"A": {"Type": "Pass", "InputPath": "$..[", "End": True}}, "A", "not a valid JSONPath"),
        (
            {
                "A": {
                    "Type": "Choice",
                    "Default": "B",
                    "Choices": [{"Variable": "$.n", "NumericIsBig": 1, "Next": "B"}],
                },
                "B": {"Type": "Succeed"},
            },
            "A",
            "unknown comparison operator NumericIsBig",
        ),
    ],
)
def test_validation_names_the_state_and_the_problem(api, states, state, problem):
    resp = api.post(
        "/api/v1/workflows",
        json={"name": "invalid", "definition": {"StartAt": "A", "States": states}},
    )
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    found = [d for d in error["details"] if problem in d["message"]]
    assert found and found[0]["state"] == state, error


@pytest.mark.parametrize(
    ("definition", "kind"), [([], "an array"), (5, "a number"), (None, "null")]
)
def test_a_definition_of_the_wrong_type_is_one_clear_error(api, definition, kind):
    resp = api.post("/api/v1/workflows", json={"name": "typo", "definition": definition})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    problem = f"must be the Amazon States Language object (or its JSON as a string), not {kind}"
    # one detail for the field, not one per type it may have ("definition.dict[any,any]")
    assert error["details"] == [{"field": "definition", "message": problem}]
    assert error["message"] == f"definition: {problem}"
    assert api.get("/api/v1/workflows/typo").status_code == 404

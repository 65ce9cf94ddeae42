"""Whole machines through the step functions, with Python callables as Tasks.

The definitions are Step Functions documentation examples with only their
`Resource` changed.
"""

from __future__ import annotations

from gateway.services.workflows import compile_definition
from gateway.services.workflows.errors import StatesError
from gateway.services.workflows.machine import (
    PAYLOAD_LIMIT,
    Goto,
    Sleep,
    Stop,
    context_for,
    enter,
    on_error,
)
from tests.gateway.workflows.driver import run
from tests.workflow_examples import catch_example, choice_example, parallel_example


def failing(times: int, error: str = "HandledError", then=None):
    calls = []

    def task(payload):
        calls.append(payload)
        if len(calls) <= times:
            raise StatesError(error, f"attempt {len(calls)}")
        return then

    task.calls = calls
    return task


def one_task(resource: str = "f", **fields) -> dict:
    """A machine of one Task `T` that ends (plus `fields` on the Task)."""
    task = {"Type": "Task", "Resource": resource, "End": True, **fields}
    return {"StartAt": "T", "States": {"T": task}}


def test_input_and_output_processing_example():
    definition = {
        "StartAt": "Lambda",
        "States": {
            "Lambda": {
                "Type": "Task",
                "Resource": "hello",
                "InputPath": "$.lambda",
                "ResultPath": "$.data.lambdaresult",
                "OutputPath": "$.data",
                "End": True,
            }
        },
    }
    data = {
        "comment": "An input comment.",
        "data": {"val1": 23, "val2": 17},
        "extra": "foo",
        "lambda": {"who": "AWS Step Functions"},
    }
    end = run(definition, data, {"hello": lambda event: f"Hello, {event['who']}!"})
    assert end == Goto(None, {"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"})


def test_retry_with_backoff_then_success():
    definition = {
        "StartAt": "Flaky",
        "States": {
            "Flaky": {
                "Type": "Task",
                "Resource": "flaky",
                "Retry": [
                    {"ErrorEquals": ["States.Timeout"], "MaxAttempts": 0},
                    {
                        "ErrorEquals": ["HandledError"],
                        "IntervalSeconds": 3,
                        "MaxAttempts": 3,
                        "BackoffRate": 1.5,
                    },
                ],
                "End": True,
            }
        },
    }
    trace: list = []
    task = failing(3, then={"ok": True})
    assert run(definition, {}, {"flaky": task}, trace) == Goto(None, {"ok": True})
    assert [t for t in trace if t[0] == "retry"] == [
        ("retry", 1, 3.0),
        ("retry", 1, 4.5),
        ("retry", 1, 6.75),
    ]
    assert len(task.calls) == 4


def test_max_delay_caps_the_backoff():
    retry = {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "BackoffRate": 10,
             "MaxAttempts": 5, "MaxDelaySeconds": 60}  # fmt: skip
    machine = compile_definition(one_task(Retry=[retry]))
    delays = [on_error(machine, "T", {}, "Boom", "", {0: used}).delay_sec for used in range(3)]
    assert delays == [10, 60, 60]


def test_catch_all_fallback_after_retries_run_out():
    task = failing(10, "CustomError")
    end = run(catch_example("hello"), {"who": "me"}, {"hello": task})
    assert end == Goto(
        None,
        {
            "who": "me",
            "error": {"Error": "CustomError", "Cause": "attempt 3"},
            "fallback": "This is a fallback from any error",
        },
    )
    assert len(task.calls) == 3  # the first try and two retries


def test_uncaught_error_stops_the_machine_with_its_name_and_cause():
    assert run(one_task(), {}, {"f": failing(1, "ValueError")}) == Stop("ValueError", "attempt 1")


def test_task_failed_matches_function_errors_but_not_timeouts():
    definition = one_task(Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}])
    definition["States"]["Caught"] = {"Type": "Pass", "Result": "caught", "End": True}
    assert run(definition, {}, {"f": failing(1, "ValueError")}) == Goto(None, "caught")
    assert run(definition, {}, {"f": failing(1, "States.Timeout")}) == Stop(
        "States.Timeout", "attempt 1"
    )


def test_choice_example():
    definition = choice_example({"Type": "Pass", "Result": "twenties", "End": True})
    assert run(definition, {"type": "Public"}, {}).output == "public"
    assert run(definition, {"type": "Private", "value": 0}, {}).output == "zero"
    assert run(definition, {"type": "Private", "value": 25}, {}).output == "twenties"
    assert run(definition, {"type": "Private", "value": 5}, {}) == Stop(
        "DefaultStateError", "No Matches!"
    )
    # a missing variable in a comparison is a runtime error, not a quiet Default
    assert run(definition, {"type": "Private"}, {}).error == "States.Runtime"


def test_parallel_collects_branch_outputs_in_order():
    definition = parallel_example(
        {"Type": "Task", "Resource": "address", "End": True},
        {"Type": "Task", "Resource": "phone", "End": True},
    )
    tasks = {"address": lambda e: {"street": e["id"] + " Main St"}, "phone": lambda e: "555"}
    assert run(definition, {"id": "12"}, tasks).output == [{"street": "12 Main St"}, "555"]


def test_a_failed_branch_fails_the_parallel_state():
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {
                        "StartAt": "F",
                        "States": {"F": {"Type": "Fail", "Error": "Nope", "Cause": "x"}},
                    }
                ],
            }
        },
    }
    assert run(definition, {}, {}) == Stop("Nope", "x")


def test_map_example_with_item_selector_and_context():
    definition = {
        "StartAt": "ValidateAll",
        "States": {
            "ValidateAll": {
                "Type": "Map",
                "InputPath": "$.detail",
                "ItemsPath": "$.shipped",
                "MaxConcurrency": 0,
                "ItemSelector": {
                    "parcel.$": "$$.Map.Item.Value",
                    "index.$": "$$.Map.Item.Index",
                    "courier.$": "$.delivery-partner",
                },
                "ItemProcessor": {
                    "StartAt": "Validate",
                    "States": {"Validate": {"Type": "Task", "Resource": "ship-val", "End": True}},
                },
                "ResultPath": "$.detail.shipped",
                "End": True,
            }
        },
    }
    data = {
        "ship-date": "2016-03-14T01:59:00Z",
        "detail": {
            "delivery-partner": "UQS",
            "shipped": [{"prod": "R31", "count": 1}, {"prod": "S39", "count": 2}],
        },
    }
    validate = lambda e: f"{e['index']}:{e['parcel']['prod']}x{e['parcel']['count']}@{e['courier']}"  # noqa: E731
    end = run(definition, data, {"ship-val": validate})
    assert end.output["detail"]["shipped"] == ["0:R31x1@UQS", "1:S39x2@UQS"]
    assert end.output["ship-date"] == "2016-03-14T01:59:00Z"


def test_map_over_something_else_than_an_array_fails():
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "End": True,
                "ItemProcessor": {"StartAt": "S", "States": {"S": {"Type": "Succeed"}}},
            }
        },
    }
    assert run(definition, {"not": "a list"}, {}).error == "States.Runtime"
    assert run(definition, [1, 2], {}).output == [1, 2]


def test_pass_result_and_result_path_null():
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.fixed", "Next": "B"},
            "B": {"Type": "Pass", "Result": "dropped", "ResultPath": None, "Next": "C"},
            "C": {"Type": "Pass", "InputPath": None, "End": True, "ResultPath": "$.empty"},
        },
    }
    # InputPath null gives C the input {}; ResultPath still merges into C's raw input.
    assert run(definition, {"k": "v"}, {}).output == {"k": "v", "fixed": {"x": 1}, "empty": {}}
    definition["States"]["C"] = {"Type": "Succeed"}
    assert run(definition, {"k": "v"}, {}).output == {"k": "v", "fixed": {"x": 1}}


def test_wait_variants_compute_their_due_time():
    now = 1_000_000.0
    states = {
        "Seconds": {"Type": "Wait", "Seconds": 5, "End": True},
        "SecondsPath": {"Type": "Wait", "SecondsPath": "$.delay", "End": True},
        "Timestamp": {"Type": "Wait", "Timestamp": "2026-12-05T10:00:00Z", "End": True},
        "TimestampPath": {"Type": "Wait", "TimestampPath": "$.at", "End": True},
    }
    data = {"delay": 2.5, "at": "2026-12-05T10:00:01+00:00"}
    dues = {}
    for name, state in states.items():
        machine = compile_definition({"StartAt": name, "States": {name: state}})
        step = enter(machine, name, data, context_for({}, name, ""), now)
        assert isinstance(step, Sleep) and step.carry == data
        dues[name] = step.until
    assert dues["Seconds"] == now + 5 and dues["SecondsPath"] == now + 2.5
    assert dues["TimestampPath"] - dues["Timestamp"] == 1
    machine = compile_definition({"StartAt": "W", "States": {"W": states["SecondsPath"]}})
    assert enter(machine, "W", {"delay": "soon"}, {}, now).error == "States.Runtime"


def test_outputs_over_the_payload_limit_fail_the_state():
    end = run(one_task("big"), {}, {"big": lambda e: "x" * PAYLOAD_LIMIT})
    assert end.error == "States.DataLimitExceeded"


def test_fail_state_reads_error_and_cause_from_paths():
    definition = {
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}},
    }
    assert run(definition, {"e": "MyError", "c": "because"}, {}) == Stop("MyError", "because")

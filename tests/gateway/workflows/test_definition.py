"""Definitions are checked at create time: each mistake names its state and field."""

from __future__ import annotations

import pytest

from gateway.services.workflows import compile_definition, task_resources
from store import errors


def problems(definition) -> list[dict]:
    with pytest.raises(errors.Invalid) as caught:
        compile_definition(definition)
    return caught.value.details


def machine(**states) -> dict:
    return {"StartAt": next(iter(states)), "States": states}


def test_a_valid_definition_compiles_and_lists_its_tasks():
    compiled = compile_definition(
        {
            "StartAt": "Fan",
            "States": {
                "Fan": {
                    "Type": "Parallel",
                    "Branches": [
                        machine(A={"Type": "Task", "Resource": "hello:live", "End": True}),
                        machine(B={"Type": "Task", "Resource": "hello:3", "End": True}),
                    ],
                    "Next": "Each",
                },
                "Each": {
                    "Type": "Map",
                    "ItemProcessor": machine(C={"Type": "Task", "Resource": "add", "End": True}),
                    "End": True,
                },
            },
        }
    )
    assert [(name, resource) for _, name, resource in task_resources(compiled)] == [
        ("A", "hello:live"),
        ("B", "hello:3"),
        ("C", "add"),
    ]


def test_json_text_is_accepted_and_bad_json_is_refused():
    assert compile_definition('{"StartAt":"A","States":{"A":{"Type":"Succeed"}}}').start_at == "A"
    with pytest.raises(errors.Invalid, match="not valid JSON"):
        compile_definition('{"StartAt":')


def test_unknown_next_names_the_state_and_target():
    (problem,) = problems(machine(A={"Type": "Pass", "Next": "Nowhere"}, B={"Type": "Succeed"}))[:1]
    assert problem["state"] == "A"
    assert "Nowhere" in problem["message"]
    assert problem["field"] == "definition.States.A.Next"


def test_unreachable_state_is_named():
    found = problems(machine(A={"Type": "Succeed"}, Orphan={"Type": "Pass", "End": True}))
    assert [(p["state"], "unreachable" in p["message"]) for p in found] == [("Orphan", True)]


def test_a_machine_without_a_terminal_state_is_refused():
    found = problems(machine(A={"Type": "Pass", "Next": "B"}, B={"Type": "Pass", "Next": "A"}))
    assert any("no terminal state" in p["message"] for p in found)


def test_bad_jsonpath_names_state_and_field():
    found = problems(machine(A={"Type": "Pass", "InputPath": "$.a[", "End": True}))
    assert found[0]["state"] == "A" and "InputPath" in found[0]["message"]
    found = problems(machine(A={"Type": "Pass", "Parameters": {"x.$": "$$$"}, "End": True}))
    assert found[0]["state"] == "A" and "Parameters" in found[0]["message"]
    found = problems(machine(A={"Type": "Pass", "ResultPath": "$.items[*]", "End": True}))
    assert "must name one node" in found[0]["message"]


def test_bad_choice_operator_names_the_state():
    found = problems(
        machine(
            Pick={
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericEqualz": 1, "Next": "Done"}],
                "Default": "Done",
            },
            Done={"Type": "Succeed"},
        )
    )
    assert found[0]["state"] == "Pick"
    assert "unknown comparison operator NumericEqualz" in found[0]["message"]


def test_choice_operand_types_are_checked():
    found = problems(
        machine(
            Pick={
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericEquals": "1", "Next": "Done"}],
            },
            Done={"Type": "Succeed"},
        )
    )
    assert "NumericEquals takes a number" in found[0]["message"]


def test_problems_inside_a_branch_name_the_inner_state():
    found = problems(
        machine(
            Fan={
                "Type": "Parallel",
                "Branches": [machine(Inner={"Type": "Pass", "Next": "Outer"})],
                "Next": "Outer",
            },
            Outer={"Type": "Succeed"},
        )
    )
    assert found[0]["state"] == "Inner"
    assert found[0]["field"] == "definition.States.Fan.Branches[0].States.Inner.Next"


def test_wrong_fields_and_types_are_reported():
    found = problems(machine(A={"Type": "Task", "Resource": "f", "End": True, "Retries": []}))
    assert found[0]["state"] == "A" and "Retries" in found[0]["message"]
    found = problems(machine(A={"Type": "Teleport", "End": True}))
    assert "unknown Type 'Teleport'" in found[0]["message"]
    found = problems(machine(A={"Type": "Pass"}))
    assert "exactly one of Next and End" in found[0]["message"]
    found = problems(machine(A={"Type": "Wait", "Seconds": 1, "Timestamp": "x", "End": True}))
    assert any("exactly one of Seconds" in p["message"] for p in found)
    found = problems(
        machine(
            A={"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "End": True}
        )
    )
    assert "not an ARN" in found[0]["message"]


def test_states_all_must_come_alone_and_last():
    found = problems(
        machine(
            A={
                "Type": "Task",
                "Resource": "f",
                "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}],
                "End": True,
            }
        )
    )
    assert "States.ALL must be alone" in found[0]["message"]


def test_the_error_message_summarises_the_first_problem():
    with pytest.raises(errors.Invalid) as caught:
        compile_definition(machine(A={"Type": "Pass", "Next": "X"}, B={"Type": "Succeed"}))
    assert caught.value.message.startswith("invalid workflow definition: state 'A':")
    assert "more)" in caught.value.message  # B is also unreachable

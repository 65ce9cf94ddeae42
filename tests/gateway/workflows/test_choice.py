"""Choice rules: every operator family, combinators, type tests and the Path twins."""

from __future__ import annotations

import pytest

from gateway.services.workflows.choice import OPERATORS, check_rule, choose, evaluate
from gateway.services.workflows.errors import StatesError

DATA = {
    "s": "beta",
    "n": 7,
    "f": 2.5,
    "b": True,
    "t": "2026-12-05T10:00:00Z",
    "t2": "2026-12-05T11:00:00+01:00",
    "none": None,
    "limit": 10,
    "file": "report.csv",
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.s", "StringEquals": "beta"}, True),
        ({"Variable": "$.s", "StringLessThan": "gamma"}, True),
        ({"Variable": "$.s", "StringGreaterThanEquals": "beta"}, True),
        ({"Variable": "$.s", "StringLessThanEquals": "alpha"}, False),
        ({"Variable": "$.file", "StringMatches": "*.csv"}, True),
        ({"Variable": "$.file", "StringMatches": "*.json"}, False),
        ({"Variable": "$.n", "NumericEquals": 7}, True),
        ({"Variable": "$.n", "NumericLessThan": 7}, False),
        ({"Variable": "$.f", "NumericGreaterThan": 2}, True),
        ({"Variable": "$.n", "NumericLessThanPath": "$.limit"}, True),
        ({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.limit"}, False),
        ({"Variable": "$.b", "BooleanEquals": True}, True),
        ({"Variable": "$.b", "BooleanEqualsPath": "$.b"}, True),
        ({"Variable": "$.t", "TimestampEquals": "2026-12-05T10:00:00+00:00"}, True),
        ({"Variable": "$.t", "TimestampEqualsPath": "$.t2"}, True),
        ({"Variable": "$.t", "TimestampLessThan": "2026-12-05T10:00:01Z"}, True),
        ({"Variable": "$.s", "StringEqualsPath": "$.s"}, True),
        ({"Variable": "$.none", "IsNull": True}, True),
        ({"Variable": "$.s", "IsNull": True}, False),
        ({"Variable": "$.missing", "IsPresent": False}, True),
        ({"Variable": "$.s", "IsPresent": True}, True),
        ({"Variable": "$.n", "IsNumeric": True}, True),
        ({"Variable": "$.b", "IsNumeric": True}, False),  # a boolean is not a number
        ({"Variable": "$.s", "IsString": True}, True),
        ({"Variable": "$.b", "IsBoolean": True}, True),
        ({"Variable": "$.t", "IsTimestamp": True}, True),
        ({"Variable": "$.s", "IsTimestamp": True}, False),
        # a comparison between different types is false, not an error
        ({"Variable": "$.s", "NumericEquals": 7}, False),
        ({"Variable": "$.n", "StringEquals": "7"}, False),
        (
            {
                "And": [
                    {"Variable": "$.n", "NumericGreaterThan": 1},
                    {"Variable": "$.s", "StringEquals": "beta"},
                ]
            },
            True,
        ),
        (
            {
                "Or": [
                    {"Variable": "$.n", "NumericGreaterThan": 100},
                    {"Variable": "$.b", "BooleanEquals": True},
                ]
            },
            True,
        ),
        ({"Not": {"Variable": "$.s", "StringEquals": "beta"}}, False),
    ],
)
def test_operators(rule, expected):
    assert check_rule(rule, top=False) == []
    assert evaluate(rule, DATA) is expected


def test_every_operator_family_is_known():
    assert len(OPERATORS) == 39  # 17 comparisons, 16 …Path twins, 5 type tests, IsPresent
    assert {"StringMatches", "IsPresent", "TimestampGreaterThanEqualsPath"} <= OPERATORS
    assert "StringMatchesPath" not in OPERATORS


def test_a_missing_variable_is_a_runtime_error():
    with pytest.raises(StatesError) as caught:
        evaluate({"Variable": "$.missing", "StringEquals": "x"}, DATA)
    assert caught.value.error == "States.Runtime"


def test_choose_falls_back_to_default_or_fails():
    rules = [{"Variable": "$.n", "NumericEquals": 1, "Next": "One"}]
    assert choose(rules, "Other", DATA, "Pick") == "Other"
    with pytest.raises(StatesError) as caught:
        choose(rules, None, DATA, "Pick")
    assert caught.value.error == "States.NoChoiceMatched"


def test_check_rule_problems():
    assert check_rule({"Variable": "$.n", "NumericEquals": 1}, top=True) == [
        "a choice rule needs a Next"
    ]
    assert check_rule({"Variable": "$.n", "NumericEquals": 1, "Next": "X"}, top=False) == [
        "only top-level choice rules may have a Next"
    ]
    assert (
        "exactly one comparison operator"
        in check_rule(
            {"Variable": "$.n", "NumericEquals": 1, "NumericLessThan": 2, "Next": "X"}, top=True
        )[0]
    )
    assert "And must be a non-empty list" in check_rule({"And": [], "Next": "X"}, top=True)[0]
    assert "Variable" in check_rule({"Variable": "n", "IsNull": True}, top=False)[0]

"""Workflow fixtures shared by the machine, API and e2e tests.

The definitions are Step Functions documentation examples with only their
`Resource` (and the Tasks' `Parameters`) changed; `FUNCTIONS` are the Python
functions their Tasks call when a real platform runs them.
"""

from __future__ import annotations

FUNCTIONS = {
    "add": "def main(event):\n    return {'sum': event['a'] + event['b']}\n",
    "nap": (
        "import time\n\n\ndef main(event):\n    time.sleep(event.get('seconds', 0.5))\n"
        "    return {'napped': event.get('seconds', 0.5), 'tag': event.get('tag')}\n"
    ),
    "always-fails": (
        "class CustomError(Exception):\n    pass\n\n\n"
        "def main(event):\n    raise CustomError('this always fails')\n"
    ),
    "boom": "def main(event):\n    raise ValueError('bad input')\n",
}


def nap_task(seconds: float, tag: str = "", **fields) -> dict:
    """A Task calling `nap` for `seconds` (plus `fields`: Next or End, Catch…)."""
    return {
        "Type": "Task",
        "Resource": "nap",
        "Parameters": {"seconds": seconds, "tag": tag},
        **fields,
    }


def catch_example(resource: str) -> dict:
    """ "Handling error conditions": retry CustomError twice with backoff, then catch all."""
    return {
        "Comment": "A Catch example of the Amazon States Language using an AWS Lambda function",
        "StartAt": "CreateAccount",
        "States": {
            "CreateAccount": {
                "Type": "Task",
                "Resource": resource,
                "Retry": [
                    {
                        "ErrorEquals": ["CustomError"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 2,
                        "BackoffRate": 2.0,
                    }
                ],
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Next": "CatchAllFallback",
                        "ResultPath": "$.error",
                    }
                ],
                "End": True,
            },
            "CatchAllFallback": {
                "Type": "Pass",
                "Result": "This is a fallback from any error",
                "ResultPath": "$.fallback",
                "End": True,
            },
        },
    }


def choice_example(in_twenties: dict) -> dict:
    """The Choice state example; `in_twenties` is the state a value in [20, 30) goes to."""
    return {
        "StartAt": "ChoiceStateX",
        "States": {
            "ChoiceStateX": {
                "Type": "Choice",
                "Choices": [
                    {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"},
                    {"Variable": "$.value", "NumericEquals": 0, "Next": "ValueIsZero"},
                    {
                        "And": [
                            {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                            {"Variable": "$.value", "NumericLessThan": 30},
                        ],
                        "Next": "ValueInTwenties",
                    },
                ],
                "Default": "DefaultState",
            },
            "Public": {"Type": "Pass", "Result": "public", "End": True},
            "ValueIsZero": {"Type": "Pass", "Result": "zero", "End": True},
            "ValueInTwenties": in_twenties,
            "DefaultState": {"Type": "Fail", "Error": "DefaultStateError", "Cause": "No Matches!"},
        },
    }


def parallel_example(address: dict, phone: dict) -> dict:
    """The Parallel state example: look a customer's address and phone up at once."""
    return {
        "StartAt": "LookupCustomerInfo",
        "States": {
            "LookupCustomerInfo": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {"StartAt": "LookupAddress", "States": {"LookupAddress": address}},
                    {"StartAt": "LookupPhone", "States": {"LookupPhone": phone}},
                ],
            }
        },
    }

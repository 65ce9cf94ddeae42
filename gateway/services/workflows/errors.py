"""Errors raised while an execution runs, named as Step Functions names them."""

from __future__ import annotations

# Predefined error names (a function's own error type is an error name too).
ALL = "States.ALL"
TIMEOUT = "States.Timeout"
TASK_FAILED = "States.TaskFailed"
RUNTIME = "States.Runtime"
DATA_LIMIT = "States.DataLimitExceeded"
BRANCH_FAILED = "States.BranchFailed"
NO_CHOICE = "States.NoChoiceMatched"

# `States.ALL` matches every error but these two (they are the definition's or the
# platform's fault, so no Retry or Catch should hide them).
_NOT_IN_ALL = {RUNTIME, DATA_LIMIT}


class StatesError(Exception):
    """A named error with a cause: what a Fail state, a failed Task or bad data raises."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


def matches(error_equals: list[str], error: str) -> bool:
    """Whether a Retry/Catch clause's `ErrorEquals` covers `error`."""
    if error in error_equals:
        return True
    if ALL in error_equals and error not in _NOT_IN_ALL:
        return True
    # Every failure of a Task but its timeout: a function's own error (ValueError, …) too.
    return TASK_FAILED in error_equals and error not in {TIMEOUT, *_NOT_IN_ALL}

"""The step function: what one state does with its input, as plain values.

No I/O here. The runner asks `enter` what a state wants (move on, fail, run a
Task, sleep, fork branches), does the effect, and comes back with
`complete` (the effect's result), `after_wait` or `on_error`. Each answer is
a value the runner can write to the store before taking the next step, so a
crash between two steps loses nothing but the step in flight.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import orjson

from store.records import MAX_JSON_DEPTH, nests_deeper_than

from ...limits import WORKFLOW_PAYLOAD_LIMIT as PAYLOAD_LIMIT  # per state's input or output
from .choice import choose, parse_timestamp
from .definition import Choice, Fail, Machine, Map, Parallel, Pass, Succeed, Task, Wait
from .errors import DATA_LIMIT, RUNTIME, StatesError, matches
from .paths import place, render, select


@dataclass(frozen=True)
class Goto:
    """Move on to `next` with `output`; `next` None means this machine succeeded."""

    next: str | None
    output: Any


@dataclass(frozen=True)
class Stop:
    """This machine failed (a Fail state, or an error nothing caught)."""

    error: str
    cause: str


@dataclass(frozen=True)
class Invoke:
    resource: str
    payload: Any
    timeout_sec: float | None


@dataclass(frozen=True)
class Sleep:
    until: float  # Unix seconds
    carry: Any  # the effective input, for after_wait


@dataclass(frozen=True)
class Fork:
    """Run `machines[i]` on `inputs[i]`, at most `max_concurrency` at once (0: no bound)."""

    machines: list[Machine]
    inputs: list[Any]
    max_concurrency: int


@dataclass(frozen=True)
class RetryLater:
    delay_sec: float
    retrier: int  # which Retry clause: its attempts are counted separately


Step = Goto | Stop | Invoke | Sleep | Fork


def context_for(
    execution: dict,
    state: str,
    entered: str,
    retry_count: int = 0,
    item: tuple[int, Any] | None = None,
) -> dict:
    """The context object (`$$`) a state sees."""
    context = {
        **execution,
        "State": {"Name": state, "EnteredTime": entered, "RetryCount": retry_count},
    }
    if item is not None:
        context["Map"] = {"Item": {"Index": item[0], "Value": item[1]}}
    return context


def check_size(value: Any, what: str) -> Any:
    if nests_deeper_than(value):  # NOTE: orjson writes 254 levels at most (reads 1,024)
        raise StatesError(DATA_LIMIT, f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    size = len(orjson.dumps(value))
    if size > PAYLOAD_LIMIT:
        raise StatesError(DATA_LIMIT, f"{what} is {size} bytes; the limit is {PAYLOAD_LIMIT}")
    return value


def _input(state, data: Any) -> Any:
    return {} if state.InputPath is None else select(state.InputPath, data)


def _output(state, data: Any) -> Any:
    return {} if state.OutputPath is None else select(state.OutputPath, data)


def _next(state) -> str | None:
    return None if getattr(state, "End", False) else state.Next


def _effective(state, data: Any, context: dict) -> Any:
    effective = _input(state, data)
    if getattr(state, "Parameters", None) is not None:
        effective = render(state.Parameters, effective, context)
    return effective


def enter(machine: Machine, name: str, data: Any, context: dict, now: float | None = None) -> Step:
    """What state `name` does with its raw input `data`."""
    state = machine.states[name]
    try:
        return _enter(state, name, data, context, time.time() if now is None else now)
    except StatesError as exc:
        if isinstance(state, Task | Parallel | Map):
            return _catch(state, data, exc.error, exc.cause)
        return Stop(exc.error, exc.cause)


def _enter(state, name: str, data: Any, context: dict, now: float) -> Step:
    if isinstance(state, Pass):
        effective = _effective(state, data, context)
        result = state.Result if "Result" in state.model_fields_set else effective
        merged = data if state.ResultPath is None else place(data, state.ResultPath, result)
        return Goto(_next(state), check_size(_output(state, merged), f"the output of {name!r}"))
    if isinstance(state, Choice):
        effective = _input(state, data)
        target = choose(state.Choices, state.Default, effective, name)
        return Goto(target, _output(state, effective))
    if isinstance(state, Succeed):
        return Goto(None, _output(state, _input(state, data)))
    if isinstance(state, Fail):
        error = select(state.ErrorPath, data) if state.ErrorPath else state.Error
        cause = select(state.CausePath, data) if state.CausePath else state.Cause
        return Stop(str(error or "States.Fail"), "" if cause is None else str(cause))
    if isinstance(state, Wait):
        effective = _input(state, data)
        return Sleep(_wait_until(state, effective, now), effective)
    if isinstance(state, Task):
        effective = check_size(_effective(state, data, context), f"the input of {name!r}")
        timeout = state.TimeoutSeconds
        if state.TimeoutSecondsPath:
            timeout = select(state.TimeoutSecondsPath, effective)
            if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
                raise StatesError(RUNTIME, f"TimeoutSecondsPath gave {timeout!r}, not seconds")
        return Invoke(state.Resource, effective, timeout)
    if isinstance(state, Parallel):
        effective = _effective(state, data, context)
        return Fork(state.branches, [effective] * len(state.branches), 0)
    if isinstance(state, Map):
        return _fork_items(state, data, context)
    raise AssertionError(f"unknown state {state!r}")


def _wait_until(state: Wait, effective: Any, now: float) -> float:
    if state.Seconds is not None:
        return now + state.Seconds
    if state.SecondsPath is not None:
        seconds = select(state.SecondsPath, effective)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise StatesError(RUNTIME, f"SecondsPath gave {seconds!r}, not a number of seconds")
        return now + seconds
    stamp = (
        state.Timestamp if state.Timestamp is not None else select(state.TimestampPath, effective)
    )
    parsed = parse_timestamp(stamp)
    if parsed is None:
        raise StatesError(RUNTIME, f"{stamp!r} is not an RFC 3339 timestamp")
    return parsed.timestamp()


def _fork_items(state: Map, data: Any, context: dict) -> Fork:
    effective = _input(state, data)
    items = select(state.ItemsPath, effective)
    if not isinstance(items, list):
        raise StatesError(RUNTIME, f"ItemsPath {state.ItemsPath!r} is not an array")
    selector = state.ItemSelector if state.ItemSelector is not None else state.Parameters
    if selector is None:
        inputs = list(items)
    else:
        inputs = [
            render(selector, effective, {**context, "Map": {"Item": {"Index": i, "Value": item}}})
            for i, item in enumerate(items)
        ]
    return Fork([state.processor] * len(inputs), inputs, state.MaxConcurrency)


def after_wait(machine: Machine, name: str, carry: Any) -> Step:
    state = machine.states[name]
    try:
        return Goto(_next(state), _output(state, carry))
    except StatesError as exc:
        return Stop(exc.error, exc.cause)


def complete(machine: Machine, name: str, data: Any, result: Any, context: dict) -> Step:
    """A Task's result (or a Parallel's/Map's list of outputs) applied to the raw input."""
    state = machine.states[name]
    try:
        if state.ResultSelector is not None:
            result = render(state.ResultSelector, result, context)
        merged = data if state.ResultPath is None else place(data, state.ResultPath, result)
        output = check_size(_output(state, merged), f"the output of {name!r}")
    except StatesError as exc:
        return _catch(state, data, exc.error, exc.cause)
    return Goto(_next(state), output)


def on_error(
    machine: Machine, name: str, data: Any, error: str, cause: str, retries: dict[int, int]
) -> RetryLater | Goto | Stop:
    """A failed Task/Parallel/Map: retry (`retries`: attempts used per clause), catch, or stop."""
    state = machine.states[name]
    for index, retrier in enumerate(getattr(state, "Retry", [])):
        if not matches(retrier.ErrorEquals, error):
            continue
        used = retries.get(index, 0)
        if used >= retrier.MaxAttempts:
            break  # the matching clause is spent: no other Retry clause applies
        delay = retrier.IntervalSeconds * retrier.BackoffRate**used
        if retrier.MaxDelaySeconds is not None:
            delay = min(delay, retrier.MaxDelaySeconds)
        if retrier.JitterStrategy == "FULL":
            delay = random.uniform(0, delay)
        return RetryLater(delay, index)
    return _catch(state, data, error, cause)


def _catch(state, data: Any, error: str, cause: str) -> Goto | Stop:
    for catcher in getattr(state, "Catch", []):
        if matches(catcher.ErrorEquals, error):
            details = {"Error": error, "Cause": cause}
            try:
                output = (
                    data if catcher.ResultPath is None else place(data, catcher.ResultPath, details)
                )
            except StatesError as exc:
                return Stop(exc.error, exc.cause)
            return Goto(catcher.Next, output)
    return Stop(error, cause)

"""Runs a machine to its end in-process with Python callables as Tasks (tests only).

It walks the pure step functions the way the durable runner does, minus the
store: enough to check a definition's data flow, retries and catches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.services.workflows import compile_definition
from gateway.services.workflows.errors import StatesError
from gateway.services.workflows.machine import (
    Fork,
    Goto,
    Invoke,
    RetryLater,
    Sleep,
    Stop,
    after_wait,
    complete,
    context_for,
    enter,
    on_error,
)

Tasks = dict[str, Callable[[Any], Any]]


def run(definition: dict, data: Any, tasks: Tasks, trace: list | None = None) -> Goto | Stop:
    machine = compile_definition(definition)
    return run_machine(machine, data, tasks, [] if trace is None else trace)


def run_machine(machine, data, tasks: Tasks, trace: list) -> Goto | Stop:
    name = machine.start_at
    while True:
        trace.append(name)
        context = context_for({"Execution": {"Id": "ex_test"}}, name, "2026-01-01T00:00:00Z")
        step = enter(machine, name, data, context)
        retries: dict[int, int] = {}
        while isinstance(step, Invoke | Fork):
            try:
                if isinstance(step, Invoke):
                    result = tasks[step.resource](step.payload)
                else:
                    result = []
                    for inner, item in zip(step.machines, step.inputs, strict=True):
                        end = run_machine(inner, item, tasks, trace)
                        if isinstance(end, Stop):
                            raise StatesError(end.error, end.cause)
                        result.append(end.output)
            except StatesError as exc:
                step = on_error(machine, name, data, exc.error, exc.cause, retries)
                if isinstance(step, RetryLater):
                    trace.append(("retry", step.retrier, step.delay_sec))
                    retries[step.retrier] = retries.get(step.retrier, 0) + 1
                    step = enter(machine, name, data, context)
                continue
            step = complete(machine, name, data, result, context)
        if isinstance(step, Sleep):
            trace.append(("sleep", step.until))
            step = after_wait(machine, name, step.carry)
        if isinstance(step, Stop) or step.next is None:
            return step
        name, data = step.next, step.output

"""Workflow definitions in Amazon States Language: parsed, checked, compiled once.

`compile_definition(obj_or_text)` returns a `Machine` or raises `Invalid`
(422) whose details name each problem's state and field: an unknown `Next`,
an unreachable state, no terminal state, a bad JSONPath, a bad Choice
operator, a wrong field. Parallel branches and Map processors are machines of
their own: their `Next`s stay inside them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from store import errors
from store.records import MAX_JSON_DEPTH, nests_deeper_than

from .choice import check_rule, parse_timestamp
from .paths import PathSyntaxError, check_template, compile_path, is_reference_path

MAX_STATES = 1000  # across every branch and processor of one definition
MAX_NAME = 80


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")

    Type: str
    Comment: str | None = None
    InputPath: str | None = "$"
    OutputPath: str | None = "$"


class _Flow(_State):
    Next: str | None = None
    End: bool | None = None


class Retrier(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ErrorEquals: list[str] = Field(min_length=1)
    IntervalSeconds: int = Field(1, ge=1, le=99_999_999)
    MaxAttempts: int = Field(3, ge=0, le=99_999_999)
    BackoffRate: float = Field(2.0, ge=1.0)
    MaxDelaySeconds: int | None = Field(None, ge=1, le=31_622_401)
    JitterStrategy: Literal["FULL", "NONE"] = "NONE"
    Comment: str | None = None


class Catcher(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ErrorEquals: list[str] = Field(min_length=1)
    Next: str
    ResultPath: str | None = "$"
    Comment: str | None = None


class _Resilient(_Flow):
    Parameters: Any = None
    ResultSelector: dict | None = None
    ResultPath: str | None = "$"
    Retry: list[Retrier] = Field(default_factory=list)
    Catch: list[Catcher] = Field(default_factory=list)


class Pass(_Flow):
    Type: Literal["Pass"]
    Parameters: Any = None
    Result: Any = None
    ResultPath: str | None = "$"


class Task(_Resilient):
    Type: Literal["Task"]
    Resource: str = Field(min_length=1)
    TimeoutSeconds: int | None = Field(None, ge=1, le=99_999_999)
    TimeoutSecondsPath: str | None = None


class Choice(_State):
    Type: Literal["Choice"]
    Choices: list[dict] = Field(min_length=1)
    Default: str | None = None


class Wait(_Flow):
    Type: Literal["Wait"]
    Seconds: int | None = Field(None, ge=0, le=99_999_999)
    Timestamp: str | None = None
    SecondsPath: str | None = None
    TimestampPath: str | None = None


class Succeed(_State):
    Type: Literal["Succeed"]


class Fail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    Type: Literal["Fail"]
    Comment: str | None = None
    Error: str | None = None
    Cause: str | None = None
    ErrorPath: str | None = None
    CausePath: str | None = None


class Parallel(_Resilient):
    Type: Literal["Parallel"]
    Branches: list[dict] = Field(min_length=1)
    _machines: list[Machine] = PrivateAttr(default_factory=list)

    @property
    def branches(self) -> list[Machine]:
        return self._machines


class Map(_Resilient):
    Type: Literal["Map"]
    ItemProcessor: dict | None = None
    Iterator: dict | None = None  # the older name of ItemProcessor
    ItemsPath: str = "$"
    ItemSelector: Any = None
    MaxConcurrency: int = Field(0, ge=0, le=10_000)  # 0: as many as the platform allows
    _machine: Machine | None = PrivateAttr(None)

    @property
    def processor(self) -> Machine:
        assert self._machine is not None
        return self._machine


StateModel = Pass | Task | Choice | Wait | Succeed | Fail | Parallel | Map
_TYPES: dict[str, type[BaseModel]] = {
    model.__name__: model for model in (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)
}


@dataclass
class Machine:
    """One state machine: the top level, a Parallel branch or a Map processor."""

    start_at: str
    states: dict[str, StateModel]
    timeout_seconds: int | None = None
    where: str = ""  # "" for the top level, e.g. "States.P.Branches[0]" inside

    def walk(self):
        """(qualified where, name, state) of every state, nested machines included."""
        for name, state in self.states.items():
            yield f"{self.where}States.{name}", name, state
            for inner in _inner_machines(state):
                yield from inner.walk()


def _inner_machines(state: StateModel) -> list[Machine]:
    if isinstance(state, Parallel):
        return state.branches
    if isinstance(state, Map):
        return [state.processor]
    return []


@dataclass
class _Problems:
    items: list[dict] = field(default_factory=list)
    count: int = 0  # states seen across every machine

    def add(self, where: str, state: str | None, message: str) -> None:
        self.items.append(
            {"field": f"definition.{where}".rstrip("."), "state": state, "message": message}
        )


def parse_definition(value: Any) -> dict:
    """The definition as an object: given as one, or as its JSON text."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)  # NOTE: json.loads recursed past Python's limit
        except orjson.JSONDecodeError as exc:
            raise errors.Invalid(f"the definition is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise errors.Invalid("the definition must be an Amazon States Language object")
    if nests_deeper_than(value):
        raise errors.Invalid(f"the definition nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def compile_definition(value: Any) -> Machine:
    """A checked `Machine`, or `Invalid` listing every problem with its state."""
    problems = _Problems()
    machine = _machine(parse_definition(value), "", problems, top=True)
    if problems.count > MAX_STATES:
        problems.add("States", None, f"{problems.count} states; at most {MAX_STATES}")
    if problems.items or machine is None:
        first = problems.items[0]
        where = f"state {first['state']!r}: " if first["state"] else ""
        more = f" (and {len(problems.items) - 1} more)" if len(problems.items) > 1 else ""
        raise errors.Invalid(
            f"invalid workflow definition: {where}{first['message']}{more}",
            details=problems.items,
        )
    return machine


def _machine(raw: Any, where: str, problems: _Problems, *, top: bool = False) -> Machine | None:
    if not isinstance(raw, dict):
        problems.add(where, None, "must be an object with StartAt and States")
        return None
    allowed = (
        {"StartAt", "States", "Comment", "Version", "TimeoutSeconds"}
        if top
        else {"StartAt", "States", "Comment", "ProcessorConfig"}
    )
    for key in sorted(set(raw) - allowed):
        hint = " (only JSONPath definitions are supported)" if key == "QueryLanguage" else ""
        problems.add(f"{where}{key}", None, f"unknown field {key}{hint}")
    start_at, states = raw.get("StartAt"), raw.get("States")
    if not isinstance(states, dict) or not states:
        problems.add(f"{where}States", None, "States must be a non-empty object")
        return None
    if not isinstance(start_at, str):
        problems.add(f"{where}StartAt", None, "StartAt must name a state")
    elif start_at not in states:
        problems.add(f"{where}StartAt", start_at, f"StartAt names no state: {start_at!r}")
    timeout = raw.get("TimeoutSeconds")
    if top and timeout is not None and (not isinstance(timeout, int) or timeout < 1):
        problems.add(f"{where}TimeoutSeconds", None, "TimeoutSeconds must be a positive integer")
    config = raw.get("ProcessorConfig") or {}
    if not top and config.get("Mode", "INLINE") != "INLINE":
        problems.add(
            f"{where}ProcessorConfig", None, "only ProcessorConfig Mode INLINE is supported"
        )

    compiled: dict[str, StateModel] = {}
    for name, body in states.items():
        problems.count += 1
        state = _state(name, body, f"{where}States.{name}.", problems)
        if state is not None:
            compiled[name] = state
    machine = Machine(start_at, compiled, timeout if top else None, where)
    if len(compiled) == len(states):  # graph checks need every state parsed
        _check_graph(machine, where, problems)
    return machine


def _state(name: str, body: Any, where: str, problems: _Problems) -> StateModel | None:
    if len(name) > MAX_NAME:
        problems.add(where, name, f"a state name may have {MAX_NAME} characters")
    if not isinstance(body, dict):
        problems.add(where, name, "a state must be an object")
        return None
    model = _TYPES.get(body.get("Type"))
    if model is None:
        problems.add(
            f"{where}Type",
            name,
            f"unknown Type {body.get('Type')!r}; use one of " + ", ".join(_TYPES),
        )
        return None
    try:
        state = model.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = ".".join(str(part) for part in error["loc"])
            message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            problems.add(f"{where}{loc}", name, f"{loc}: {message}")
        return None
    _check_state(name, state, where, problems)
    if isinstance(state, Parallel):
        for index, branch in enumerate(state.Branches):
            inner = _machine(branch, f"{where}Branches[{index}].", problems)
            if inner is not None:
                state._machines.append(inner)
    elif isinstance(state, Map):
        raw = state.ItemProcessor if state.ItemProcessor is not None else state.Iterator
        if raw is None:
            problems.add(where, name, "a Map state needs an ItemProcessor")
        else:
            state._machine = _machine(raw, f"{where}ItemProcessor.", problems)
    return state


def _check_state(name: str, state: StateModel, where: str, problems: _Problems) -> None:
    def path(field_name: str, value: str | None, *, reference: bool = False) -> None:
        if value is None:
            return
        try:
            compile_path(value)
        except PathSyntaxError as exc:
            problems.add(f"{where}{field_name}", name, f"{field_name}: {exc}")
            return
        if reference and not is_reference_path(value):
            problems.add(
                f"{where}{field_name}",
                name,
                f"{field_name} must name one node (no wildcards or filters): {value!r}",
            )

    def template(field_name: str, value: Any) -> None:
        for problem in check_template(value):
            problems.add(f"{where}{field_name}", name, f"{field_name}: {problem}")

    for field_name in ("InputPath", "OutputPath", "ErrorPath", "CausePath"):
        path(field_name, getattr(state, field_name, None))
    for field_name in (
        "ResultPath",
        "ItemsPath",
        "SecondsPath",
        "TimestampPath",
        "TimeoutSecondsPath",
    ):
        path(field_name, getattr(state, field_name, None), reference=True)
    for field_name in ("Parameters", "ResultSelector", "ItemSelector"):
        template(field_name, getattr(state, field_name, None))

    if isinstance(state, _Flow) and bool(state.End) == (state.Next is not None):
        problems.add(where, name, "a state needs exactly one of Next and End: true")
    if isinstance(state, Choice):
        for index, rule in enumerate(state.Choices):
            for problem in check_rule(rule, top=True):
                problems.add(f"{where}Choices[{index}]", name, problem)
    if isinstance(state, Wait):
        given = [
            f
            for f in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath")
            if getattr(state, f) is not None
        ]
        if len(given) != 1:
            problems.add(
                where,
                name,
                "a Wait needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath",
            )
        if state.Timestamp is not None and parse_timestamp(state.Timestamp) is None:
            problems.add(
                f"{where}Timestamp",
                name,
                f"Timestamp {state.Timestamp!r} is not RFC 3339 with a zone",
            )
    if isinstance(state, Task) and state.TimeoutSeconds and state.TimeoutSecondsPath:
        problems.add(where, name, "TimeoutSeconds and TimeoutSecondsPath exclude each other")
    if isinstance(state, Task) and state.Resource.startswith("arn:"):
        problems.add(
            f"{where}Resource",
            name,
            "Resource names a function: NAME, NAME:ALIAS or "
            f"NAME:VERSION, not an ARN ({state.Resource!r})",
        )
    if isinstance(state, Map) and state.ItemSelector is not None and state.Parameters is not None:
        problems.add(where, name, "ItemSelector and Parameters exclude each other")
    for label, clauses in (
        ("Retry", getattr(state, "Retry", [])),
        ("Catch", getattr(state, "Catch", [])),
    ):
        for index, clause in enumerate(clauses):
            names = clause.ErrorEquals
            if "States.ALL" in names and (len(names) != 1 or index != len(clauses) - 1):
                problems.add(
                    f"{where}{label}[{index}]",
                    name,
                    "States.ALL must be alone and in the last clause",
                )
            if label == "Catch":
                path(f"Catch[{index}].ResultPath", clause.ResultPath, reference=True)


def _next_names(state: StateModel) -> list[tuple[str, str]]:
    """(field, state name) of every transition a state may take."""
    out = []
    if getattr(state, "Next", None) is not None:
        out.append(("Next", state.Next))
    if isinstance(state, Choice):
        out += [
            (f"Choices[{i}].Next", rule["Next"])
            for i, rule in enumerate(state.Choices)
            if isinstance(rule.get("Next"), str)
        ]
        if state.Default is not None:
            out.append(("Default", state.Default))
    for index, catcher in enumerate(getattr(state, "Catch", [])):
        out.append((f"Catch[{index}].Next", catcher.Next))
    return out


def _is_terminal(state: StateModel) -> bool:
    return isinstance(state, Succeed | Fail) or bool(getattr(state, "End", False))


def _check_graph(machine: Machine, where: str, problems: _Problems) -> None:
    for name, state in machine.states.items():
        for field_name, target in _next_names(state):
            if target not in machine.states:
                problems.add(
                    f"{where}States.{name}.{field_name}",
                    name,
                    f"{field_name} names no state of this machine: {target!r}",
                )
    if not any(_is_terminal(state) for state in machine.states.values()):
        problems.add(
            f"{where}States",
            None,
            "no terminal state (End: true, Succeed or Fail): the machine never ends",
        )
    if machine.start_at not in machine.states:
        return
    seen, queue = {machine.start_at}, deque([machine.start_at])
    while queue:
        for _, target in _next_names(machine.states[queue.popleft()]):
            if target in machine.states and target not in seen:
                seen.add(target)
                queue.append(target)
    for name in machine.states:
        if name not in seen:
            problems.add(
                f"{where}States.{name}",
                name,
                f"unreachable: no transition from {machine.start_at!r} leads here",
            )


def task_resources(machine: Machine) -> list[tuple[str, str, str]]:
    """(where, state name, Resource) of every Task, for checking the functions exist."""
    return [
        (where, name, state.Resource)
        for where, name, state in machine.walk()
        if isinstance(state, Task)
    ]

"""Choice rules: checking them at create time and evaluating them against an input.

A rule is `{Variable, <Operator>: value}` or `And`/`Or` (lists of rules) or
`Not` (one rule). Every comparison has a `…Path` twin whose value is a path
into the input. A comparison between different types is false, as in Step
Functions; a `Variable` that matches nothing is a `States.Runtime` error
(ask `IsPresent` first when a field may be missing).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .errors import NO_CHOICE, StatesError
from .paths import PathSyntaxError, compile_path, exists, select

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp with a zone, else None."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _compare(kind: str, relation: str) -> Callable[[Any, Any], bool]:
    test = _ORDER[relation]
    if kind == "String":
        return lambda a, b: isinstance(a, str) and isinstance(b, str) and test(a, b)
    if kind == "Numeric":
        return lambda a, b: _is_number(a) and _is_number(b) and test(a, b)
    if kind == "Boolean":
        return lambda a, b: isinstance(a, bool) and isinstance(b, bool) and test(a, b)

    def timestamps(a: Any, b: Any) -> bool:
        left, right = parse_timestamp(a), parse_timestamp(b)
        return left is not None and right is not None and test(left, right)

    return timestamps


def _string_matches(value: Any, pattern: Any) -> bool:
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    # `*` is the only wildcard; `\*` is a literal star.
    parts = re.split(r"(?<!\\)\*", pattern)
    regex = ".*".join(re.escape(part.replace("\\*", "*").replace("\\\\", "\\")) for part in parts)
    return re.fullmatch(regex, value, re.DOTALL) is not None


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    f"{kind}{relation}": _compare(kind, relation)
    for kind in ("String", "Numeric", "Timestamp")
    for relation in _ORDER
}
COMPARISONS["BooleanEquals"] = _compare("Boolean", "Equals")
COMPARISONS["StringMatches"] = _string_matches
# Type tests take `true` or `false`: whether the variable should or should not be one.
TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsNumeric": _is_number,
    "IsString": lambda v: isinstance(v, str),
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: parse_timestamp(v) is not None,
}
# Every operator but StringMatches and the type tests has a …Path twin.
PATH_OPERATORS = {f"{name}Path" for name in COMPARISONS if name != "StringMatches"}
OPERATORS = {*COMPARISONS, *PATH_OPERATORS, *TYPE_TESTS, "IsPresent"}


# -- checking ----------------------------------------------------------------------------


def check_rule(rule: Any, *, top: bool) -> list[str]:
    """Problems with one Choice rule (a top-level rule has `Next`, nested ones must not)."""
    if not isinstance(rule, dict):
        return ["a choice rule must be an object"]
    problems: list[str] = []
    keys = set(rule) - {"Comment"}
    if top:
        if "Next" not in rule:
            problems.append("a choice rule needs a Next")
        keys.discard("Next")
    elif "Next" in rule:
        problems.append("only top-level choice rules may have a Next")
        keys.discard("Next")
    combinators = keys & {"And", "Or", "Not"}
    if combinators:
        if len(keys) != 1:
            problems.append(f"{', '.join(sorted(keys))} cannot be combined in one rule")
        for key in combinators:
            value = rule[key]
            if key == "Not":
                problems.extend(check_rule(value, top=False))
            elif not isinstance(value, list) or not value:
                problems.append(f"{key} must be a non-empty list of rules")
            else:
                for inner in value:
                    problems.extend(check_rule(inner, top=False))
        return problems
    if "Variable" not in keys:
        return [*problems, "a choice rule needs a Variable (or And, Or, Not)"]
    problems.extend(_check_path(rule["Variable"], "Variable"))
    operators = keys - {"Variable"}
    unknown = sorted(op for op in operators if op not in OPERATORS)
    if unknown:
        problems.append(f"unknown comparison operator {', '.join(unknown)}")
    elif len(operators) != 1:
        problems.append("a choice rule needs exactly one comparison operator")
    else:
        (op,) = operators
        problems.extend(_check_operand(op, rule[op]))
    return problems


def _check_path(value: Any, field: str) -> list[str]:
    try:
        compile_path(value)
    except PathSyntaxError as exc:
        return [f"{field}: {exc}"]
    return []


def _check_operand(op: str, value: Any) -> list[str]:
    if op in PATH_OPERATORS:
        return _check_path(value, op)
    if op in TYPE_TESTS or op == "IsPresent" or op == "BooleanEquals":
        return [] if isinstance(value, bool) else [f"{op} takes true or false"]
    if op.startswith("String"):
        return [] if isinstance(value, str) else [f"{op} takes a string"]
    if op.startswith("Numeric"):
        return [] if _is_number(value) else [f"{op} takes a number"]
    if op.startswith("Timestamp"):
        return [] if parse_timestamp(value) else [f"{op} takes an RFC 3339 timestamp with a zone"]
    return []


# -- evaluating --------------------------------------------------------------------------


def evaluate(rule: dict, data: Any) -> bool:
    if "And" in rule:
        return all(evaluate(inner, data) for inner in rule["And"])
    if "Or" in rule:
        return any(evaluate(inner, data) for inner in rule["Or"])
    if "Not" in rule:
        return not evaluate(rule["Not"], data)
    variable = rule["Variable"]
    op = next(key for key in rule if key in OPERATORS)
    expected = rule[op]
    if op == "IsPresent":
        return exists(variable, data) == expected
    value = select(variable, data)
    if op in TYPE_TESTS:
        return TYPE_TESTS[op](value) == expected
    if op in PATH_OPERATORS:
        op, expected = op[: -len("Path")], select(expected, data)
    return COMPARISONS[op](value, expected)


def choose(choices: list[dict], default: str | None, data: Any, state: str) -> str:
    """The Next of the first rule that holds, else the Default."""
    for rule in choices:
        if evaluate(rule, data):
            return rule["Next"]
    if default is None:
        raise StatesError(NO_CHOICE, f"no choice rule of {state!r} matched")
    return default

"""ASL input and output processing: JSONPath, payload templates, intrinsic functions.

A state's data flows InputPath → Parameters → (the work) → ResultSelector →
ResultPath → OutputPath. Paths are JSONPath (jsonpath-ng, with filters);
`$$.` paths read the context object (`$$.Execution.Id`, `$$.Map.Item.Value`,
…). A payload template copies literals and evaluates keys ending in `.$`,
whose value is a path or an intrinsic call (`States.Format('{}', $.a)`).

Everything here is pure: inputs are never mutated, outputs are fresh values.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Hashable
from typing import Any

from jsonpath_ng import Child, Fields, Index, Root
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parse as _jsonpath_parse

from .errors import StatesError


class PathSyntaxError(ValueError):
    """A path or intrinsic that does not parse (a definition error, found at create time)."""


# -- JSONPath ----------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def compile_path(path: str):
    """The parsed JSONPath of `$…` (or `$$…` for the context object), cached."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise PathSyntaxError(f"{path!r} is not a JSONPath (it must start with '$')")
    expression = path[1:] if path.startswith("$$") else path
    try:
        return _jsonpath_parse(expression)
    except (JsonPathParserError, JsonPathLexerError, Exception) as exc:
        raise PathSyntaxError(f"{path!r} is not a valid JSONPath: {exc}") from None


def _steps(parsed) -> list | None:
    """The field/index steps of a definite path (one value at most), else None."""
    if isinstance(parsed, Root):
        return []
    if isinstance(parsed, Child):
        head = _steps(parsed.left)
        right = parsed.right
        if head is None:
            return None
        if isinstance(right, Fields) and len(right.fields) == 1 and right.fields[0] != "*":
            return [*head, right.fields[0]]
        if isinstance(right, Index) and len(right.indices) == 1:
            return [*head, right.indices[0]]
    return None


def is_reference_path(path: str) -> bool:
    """A path naming one node (no wildcards, filters, slices): what ResultPath needs."""
    return not path.startswith("$$") and _steps(compile_path(path)) is not None


def select(path: str, data: Any, context: dict | None = None) -> Any:
    """The value at `path`: one value for a definite path, a list for any other.

    A definite path that matches nothing is a `States.Runtime` error, as in
    Step Functions (a Choice's `IsPresent` asks `exists` instead).
    """
    source = (context or {}) if path.startswith("$$") else data
    parsed = compile_path(path)
    steps = _steps(parsed)
    if steps is None:
        return [match.value for match in parsed.find(source)]
    value = source
    for step in steps:
        value = _child(value, step, path)
    return value


def exists(path: str, data: Any) -> bool:
    try:
        select(path, data)
    except StatesError:
        return False
    return True


def _child(value: Any, step: str | int, path: str) -> Any:
    if isinstance(step, int) and isinstance(value, list):
        if -len(value) <= step < len(value):
            return value[step]
    elif isinstance(step, str) and isinstance(value, dict) and step in value:
        return value[step]
    raise StatesError("States.Runtime", f"the path {path!r} matches nothing in the input")


def place(data: Any, path: str, result: Any) -> Any:
    """`data` with `result` put at the reference path `path` (ResultPath); a fresh value."""
    steps = _steps(compile_path(path))
    if steps is None:
        raise StatesError("States.Runtime", f"ResultPath {path!r} is not a reference path")
    if not steps:
        return result
    root = copy.deepcopy(data)
    if not isinstance(root, dict | list):
        raise StatesError(
            "States.Runtime", f"ResultPath {path!r} cannot be set on a {type(root).__name__}"
        )
    node = root
    for step, following in zip(steps, [*steps[1:], None], strict=True):
        last = following is None
        if isinstance(node, dict) and isinstance(step, str):
            if last:
                node[step] = result
            else:
                if not isinstance(node.get(step), dict | list):
                    node[step] = {}
                node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and -len(node) <= step < len(node):
            if last:
                node[step] = result
            else:
                node = node[step]
        else:
            raise StatesError(
                "States.Runtime", f"ResultPath {path!r} does not fit the state's input"
            )
    return root


# -- payload templates (Parameters, ResultSelector, ItemSelector) ---------------------


def check_template(template: Any) -> list[str]:
    """Problems in a payload template: bad paths or intrinsics behind `.$` keys."""
    problems: list[str] = []
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    problems.append(f"{key!r} must be a path or an intrinsic function")
                    continue
                try:
                    _compile_dynamic(value)
                except PathSyntaxError as exc:
                    problems.append(f"{key!r}: {exc}")
            else:
                problems.extend(check_template(value))
    elif isinstance(template, list):
        for item in template:
            problems.extend(check_template(item))
    return problems


def render(template: Any, data: Any, context: dict) -> Any:
    """A payload template evaluated against the state's input and the context object."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _evaluate(_compile_dynamic(value), data, context)
            else:
                out[key] = render(value, data, context)
        return out
    if isinstance(template, list):
        return [render(item, data, context) for item in template]
    return template


# -- intrinsic functions ---------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
    | (?P<call>States\.[A-Za-z0-9]+)\s*\(
    | (?P<path>\$\$?[^,()]*)
    | (?P<literal>null|true|false)
    | (?P<close>\))
    | (?P<comma>,)
    )""",
    re.VERBOSE,
)


@functools.lru_cache(maxsize=4096)
def _compile_dynamic(text: str):
    """A `.$` value as a tree: ("path", p) | ("call", name, args) | ("value", v)."""
    text = text.strip()
    if text.startswith("$"):
        compile_path(text)
        return ("path", text)
    if not text.startswith("States."):
        raise PathSyntaxError(f"{text!r} is neither a JSONPath nor an intrinsic function")
    node, end = _parse_call(text, 0)
    if text[end:].strip():
        raise PathSyntaxError(f"unexpected text after the intrinsic call in {text!r}")
    return node


def _parse_call(text: str, pos: int):
    match = _TOKEN.match(text, pos)
    if not match or not match.group("call"):
        raise PathSyntaxError(f"expected an intrinsic call at {text[pos:]!r}")
    name = match.group("call")
    if name not in INTRINSICS:
        raise PathSyntaxError(f"unknown intrinsic function {name}")
    pos = match.end()
    args: list = []
    while True:
        match = _TOKEN.match(text, pos)
        if not match:
            raise PathSyntaxError(f"cannot read the arguments of {name} in {text!r}")
        if match.group("close") and not args:
            return ("call", name, tuple(args)), match.end()
        if match.group("call"):
            node, pos = _parse_call(text, match.start())
        elif match.group("string"):
            node, pos = ("value", _unescape(match.group("string")[1:-1])), match.end()
        elif match.group("number"):
            node, pos = ("value", _number(match.group("number"))), match.end()
        elif match.group("literal"):
            node, pos = ("value", json.loads(match.group("literal"))), match.end()
        elif match.group("path"):
            path = match.group("path").strip()
            compile_path(path)
            node, pos = ("path", path), match.end()
        else:
            raise PathSyntaxError(f"unexpected {match.group().strip()!r} in {text!r}")
        args.append(node)
        match = _TOKEN.match(text, pos)
        if match and match.group("comma"):
            pos = match.end()
        elif match and match.group("close"):
            return ("call", name, tuple(args)), match.end()
        else:
            raise PathSyntaxError(f"expected ',' or ')' in {text!r}")


def _number(token: str) -> int | float:
    """A number argument as JSON reads it; one JSON cannot hold (`01`, 5000 digits, `1e999`)
    is a definition problem, not a ValueError out of the check."""
    try:
        value = json.loads(token)
    except ValueError:
        value = None
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        shown = token if len(token) <= 24 else f"{token[:20]}…"
        raise PathSyntaxError(f"{shown} is not a number an intrinsic function can take")
    return value


def _unescape(body: str) -> str:
    # `\{` and `\}` stay escaped: States.Format reads them as literal braces.
    return re.sub(r"\\([\\'])", r"\1", body)


def _evaluate(node, data: Any, context: dict) -> Any:
    kind = node[0]
    if kind == "value":
        return node[1]
    if kind == "path":
        return select(node[1], data, context)
    args = [_evaluate(arg, data, context) for arg in node[2]]
    try:
        return INTRINSICS[node[1]](*args)
    except StatesError:
        raise
    except Exception as exc:
        raise StatesError("States.IntrinsicFailure", f"{node[1]}: {exc}") from None


def _format(template: str, *values: Any) -> str:
    if not isinstance(template, str):
        raise TypeError("the template must be a string")
    pieces = re.split(r"(?<!\\)\{\}", template)
    if len(pieces) - 1 != len(values):
        raise ValueError(f"{len(pieces) - 1} placeholders but {len(values)} arguments")
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        out.append(value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))
        out.append(piece)
    return "".join(out).replace("\\{", "{").replace("\\}", "}")


def _string_to_json(text: str) -> Any:
    if not isinstance(text, str):
        raise TypeError("the argument must be a string")
    return json.loads(text)


def _array_partition(items: list, size: int) -> list:
    if size <= 0:
        raise ValueError("the chunk size must be positive")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_range(start: int, end: int, step: int) -> list:
    if step == 0:
        raise ValueError("the step must not be 0")
    values = range(int(start), int(end) + (1 if step > 0 else -1), int(step))
    if len(values) > 1000:  # NOTE: counted before it is made: (0, 10**10, 1) is 80 GB
        raise ValueError("at most 1000 items")
    return list(values)


def _hash(data: Any, algorithm: str) -> str:
    names = {
        "MD5": "md5",
        "SHA-1": "sha1",
        "SHA-256": "sha256",
        "SHA-384": "sha384",
        "SHA-512": "sha512",
    }
    if algorithm not in names:
        raise ValueError(f"unknown algorithm {algorithm!r}; use one of {', '.join(names)}")
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return hashlib.new(names[algorithm], text.encode()).hexdigest()


def _json_key(value: Any) -> Hashable:
    """A value as JSON compares it: true is not 1 (Python's == says it is), 1 is 1.0,
    an object's keys are unordered."""
    if isinstance(value, bool) or value is None:
        return value  # every number below is in a tuple: True never meets 1
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list):
        return ("a", tuple(_json_key(v) for v in value))
    return ("o", frozenset((k, _json_key(v)) for k, v in value.items()))


def _unique(items: list) -> list:
    """Step Functions' ArrayUnique: each JSON value once, first kept (one pass, hashed)."""
    seen: set = set()
    out = []
    for item in items:
        key = _json_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _contains(items: list, value: Any) -> bool:
    key = _json_key(value)
    return any(_json_key(item) == key for item in items)


INTRINSICS = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": lambda value: json.dumps(value, separators=(",", ":")),
    "States.Array": lambda *values: list(values),
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": lambda items, index: items[int(index)],
    "States.ArrayLength": lambda items: len(items),
    "States.ArrayUnique": _unique,
    "States.Base64Encode": lambda text: base64.b64encode(text.encode()).decode(),
    "States.Base64Decode": lambda text: base64.b64decode(text).decode(),
    "States.Hash": _hash,
    "States.MathRandom": lambda start, end: random.randint(int(start), int(end)),
    "States.MathAdd": lambda a, b: a + b,
    "States.StringSplit": lambda text, sep: [
        p for p in re.split("[" + re.escape(sep) + "]", text) if p
    ],
    "States.UUID": lambda: str(uuid.uuid4()),
}

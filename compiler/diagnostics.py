"""Structured build errors: `{file, line, column?, message}` read from each compiler's words.

The build's error text stays what the compiler said; these records let a
console or a CLI point at the line. One pattern per compiler family, tried
on every line (their shapes do not collide):

- C (zig cc / clang), Go, esbuild, the JS runtime's check:
  `handler.c:2:12: error: use of undeclared identifier 'x'`,
  `./handler.go:4:9: undefined: x`, `handler.js:3:12: ERROR: Unexpected "*"`
- Rust (rustc, rendered): `error[E0425]: cannot find value …` then
  `  --> handler.rs:2:16`
- Python (the runtime's check): `SyntaxError: handler.py, line 3, column 15: invalid
  syntax` (the column from `with_python_column`) or a traceback's `File "handler.py", line 3`

Only the user's files are kept: never the platform's glue (`.nimbus…`) nor
an absolute path (a toolchain's headers).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

MAX_ERRORS = 50

_FILE = r"(?:\./)?(?P<file>[\w@+-][\w./@+-]*\.\w+)"
# C, Go, esbuild: file:line:col: [severity:] message
_COLON_FORM = re.compile(
    rf"^\s*{_FILE}:(?P<line>\d+):(?:(?P<column>\d+):?)?\s*"
    r"(?:(?P<severity>fatal error|error|ERROR|warning|WARNING|note)\s*:\s*)?(?P<message>.*)$"
)
_RUST_HEAD = re.compile(r"^(?P<severity>error|warning)(?:\[\w+\])?: (?P<message>.+)$")
_RUST_AT = re.compile(rf"^\s*--> {_FILE}:(?P<line>\d+):(?P<column>\d+)")
_PYTHON_CHECK = re.compile(
    rf"^(?:(?P<type>\w+Error): )?{_FILE}, line (?P<line>\d+)(?:, column (?P<column>\d+))?: "
    r"(?P<message>.+)$"
)
_PYTHON_FRAME = re.compile(rf'^\s*File "{_FILE}", line (?P<line>\d+)')
_PYTHON_LAST = re.compile(r"^(?P<type>\w*(?:Error|Exception)): (?P<message>.+)$")
_LOG_STAMP = re.compile(r"^\[\s*[\d.]+s\] ")  # a build log line's elapsed-time prefix


@dataclass(frozen=True)
class BuildError:
    file: str
    line: int
    column: int | None
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def _users(path: str) -> bool:
    return not path.startswith(("/", ".nimbus", "nimbus_")) and "/.nimbus" not in path


def parse_build_errors(text: str | None) -> list[BuildError]:
    """Every error the text locates in the user's files, in order, without repeats."""
    found: list[BuildError] = []
    lines = [_LOG_STAMP.sub("", line) for line in (text or "").splitlines()]
    rust_message: str | None = None
    python_frame: tuple[str, int] | None = None
    for raw in lines:
        line = raw.rstrip()
        if match := _RUST_HEAD.match(line):
            rust_message = match["message"] if match["severity"] == "error" else None
            continue
        if (match := _RUST_AT.match(line)) and rust_message is not None:
            found.append(_error(match, rust_message))
            rust_message = None
            continue
        if match := _PYTHON_CHECK.match(line):
            message = f"{match['type']}: {match['message']}" if match["type"] else match["message"]
            found.append(_error(match, message))
            continue
        if match := _PYTHON_FRAME.match(line):
            python_frame = (match["file"], int(match["line"]))
            continue
        if python_frame and (match := _PYTHON_LAST.match(line.strip())):
            found.append(BuildError(*python_frame, None, line.strip()))
            python_frame = None
            continue
        match = _COLON_FORM.match(line)
        if match and match["severity"] not in ("warning", "WARNING", "note") and match["message"]:
            found.append(_error(match, match["message"].strip()))
    unique = list(dict.fromkeys(e for e in found if _users(e.file)))
    return unique[:MAX_ERRORS]


def _error(match: re.Match, message: str) -> BuildError:
    column = match["column"]
    return BuildError(match["file"], int(match["line"]), int(column) if column else None, message)


def with_python_column(text: str, files: dict[str, str]) -> str:
    """The Python runtime's check of a syntax error (`SyntaxError: handler.py, line 3: …`,
    then the traceback's source line and caret) with the caret's column, counted from 1 as
    the other compilers count: `SyntaxError: handler.py, line 3, column 15: …`. The caret
    stands under the source line as Python shows it, without its leading spaces, and 4 in;
    the file gives back those spaces. Other text comes back unchanged."""
    lines = text.splitlines()
    head = _PYTHON_CHECK.match(lines[0]) if lines else None
    if head is None or head["column"] or head["file"] not in files:
        return text
    carets = [line for line in lines[1:] if line.strip() and set(line.strip()) <= {"^", "~"}]
    source = files[head["file"]].splitlines()
    number = int(head["line"])
    if not carets or not 0 < number <= len(source):
        return text
    shown = source[number - 1]
    spaces = len(shown) - len(shown.lstrip(" \f"))
    column = spaces + len(carets[0]) - len(carets[0].lstrip()) - 4 + 1
    where = f"{head['file']}, line {number}"
    return text.replace(where, f"{where}, column {max(column, 1)}", 1)

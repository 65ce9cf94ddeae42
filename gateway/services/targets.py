"""Targets: what a caller names to invoke — `name`, `name:alias` or `name:version`.

One parser for every place that names a function to run: the invoke and
async routes (`/api/v1/functions/hello:3/invoke`, or `?version=3` /
`?alias=prod`), schedules, workflow `Resource`s, the CLI and MCP. The
function part is a name or an id (`fn_…`); neither can hold a `:`. A
qualifier of digits is a version number; any other DNS label is an alias.
Aliases are resolved by whoever owns them (the versions service); this
module only says which one was meant.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from store import errors
from store.records import FUNCTION_ID_RE, NAME_RE

_PLAIN = re.compile(r"^(?:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?|fn_[a-z0-9]{1,64})\Z")
_VERSION_RE = re.compile(r"^[0-9]{1,9}\Z")
MAX_TARGET_CHARS = 200


class Target(NamedTuple):
    """A function (id or name), and at most one of a version number and an alias.

    PERF: a NamedTuple, made on every invoke (a frozen dataclass cost ~5× more)."""

    function: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        qualifier = self.alias if self.alias is not None else self.version
        return self.function if qualifier is None else f"{self.function}:{qualifier}"


def version_number(text: str) -> int | None:
    """`text` as a version number (1-9 ASCII digits, from 1), else None.

    NOTE: not `str.isdigit()`: it is true for '²' and other digits `int()` refuses, and
    for a string too long for `int()` to convert (both made a 500)."""
    number = int(text) if _VERSION_RE.match(text) else 0
    return number if number >= 1 else None


def parse_target(
    text: str, *, version: int | None = None, alias: str | None = None, field: str = "target"
) -> Target:
    """`text` as a target, merged with a separately given `version` or `alias`
    (query parameters). A malformed qualifier, or the version or alias named
    twice differently, is a 422 naming `field`; a function part that cannot be
    a name or an id is a 404, as an unknown function is."""
    if version is None and alias is None and ":" not in text and _PLAIN.match(text):
        return Target(text)  # PERF: the invoke path's usual case (a name or an id), ~1 µs
    if not text or len(text) > MAX_TARGET_CHARS:
        raise errors.Invalid.field(field, f"must be 1-{MAX_TARGET_CHARS} characters")
    function, colon, qualifier = text.partition(":")
    if not (NAME_RE.match(function) or FUNCTION_ID_RE.match(function)):
        # no function can have this name or id: unknown, like any other
        raise errors.NotFound(f"function {function!r} not found")
    named_version = named_alias = None
    if colon:
        if _VERSION_RE.match(qualifier):
            named_version = int(qualifier)
            if named_version < 1:
                raise errors.Invalid.field(field, "versions are numbered from 1")
        elif NAME_RE.match(qualifier):
            named_alias = qualifier
        else:
            raise errors.Invalid.field(
                field, f"{qualifier!r} after ':' is neither a version number nor an alias name"
            )
    if alias is not None and not NAME_RE.match(alias):
        raise errors.Invalid.field("alias", f"{alias!r} is not an alias name")
    if version is not None and version < 1:
        raise errors.Invalid.field("version", "versions are numbered from 1")
    version = _once("version", named_version, version)
    alias = _once("alias", named_alias, alias)
    if version is not None and alias is not None:
        raise errors.Invalid.field(field, "name a version or an alias, not both")
    return Target(function, version, alias)


def _once(field: str, in_target, given):
    if in_target is not None and given is not None and in_target != given:
        raise errors.Invalid.field(field, f"the target names {in_target}, the request {given}")
    return in_target if in_target is not None else given

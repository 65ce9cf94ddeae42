"""A function's source files on disk, and what their text says (form, handler name)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ._base import BuildFailed

MAX_FILES = 200
RESERVED = ".nimbus"  # the platform's folder inside a build: glue, caches, output
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
FORMS = ("handler", "program")


_NAME_BYTES = 255  # a file or folder name (NAME_MAX)
_PATH_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def file_names_problem(names: list[str]) -> str | None:
    """What is wrong with a function's file names, or None. The API answers it as a 422
    and a build refuses it (versions stored before the API checked): a name a build
    folder cannot hold was an internal build error naming the server's paths."""
    for name in names:
        path = PurePosixPath(name)
        if (
            not name
            or _CONTROL.search(name)  # NUL, and line breaks that split compiler messages
            or "\\" in name
            or path.is_absolute()
            or any(part in ("", ".", "..") for part in name.split("/"))
            or path.parts[0] == RESERVED
            # NOTE(security): a compiler reads `-x` as an option and `@x` as a file
            # of options (`@x.c` could pass `-wrapper`): no part may start so.
            or any(part[0] in "-@" for part in path.parts)
        ):
            return (
                f"invalid file name {name!r}: use relative paths inside the function, "
                f"without '..' or control characters, not under {RESERVED}/, "
                "no part starting with '-' or '@'"
            )
        if len(name.encode()) > _PATH_BYTES or any(
            len(part.encode()) > _NAME_BYTES for part in path.parts
        ):
            return (
                f"file name {name[:80]!r}… is too long: at most {_NAME_BYTES} bytes a part, "
                f"{_PATH_BYTES} in all"
            )
    folders = {str(folder) for name in names for folder in PurePosixPath(name).parents}
    if clash := sorted(folders.intersection(names)):
        return f"{clash[0]!r} is both a file and a folder"
    return None


def write_sources(files: dict[str, str] | None, dest: Path) -> list[str]:
    """Write the user's files under `dest`; returns their relative paths, sorted."""
    if not files:
        raise BuildFailed("the function has no source files")
    if len(files) > MAX_FILES:  # compiled languages: their command lines name every file
        raise BuildFailed(f"a function may have at most {MAX_FILES} files, not {len(files)}")
    if problem := file_names_problem(list(files)):
        raise BuildFailed(problem)
    written = []
    for name, text in sorted(files.items()):
        path = PurePosixPath(name)
        target = dest.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(str(path))
    return written


def choose_form(forced: str | None, detected_program: bool) -> str:
    """ "handler" or "program": `form` when given, else what the source says."""
    if forced is not None:
        if forced not in FORMS:
            raise BuildFailed(f"form must be 'handler' or 'program', not {forced!r}")
        return forced
    return "program" if detected_program else "handler"


def handler_name(handler: str | None, default: str = "handler") -> str:
    """The handler function's name: `handler`, or the last part of e.g. "handler.Handle"."""
    name = (handler or default).rsplit(".", 1)[-1]
    if not _IDENTIFIER.match(name):
        raise BuildFailed(f"handler must name a function (an identifier), not {handler!r}")
    return name


def compiler_message(lines: list[str], *, limit_lines: int = 40, limit_chars: int = 6000) -> str:
    """The compiler's own words for a failed build, trimmed to a readable size."""
    kept = [line for line in lines if line.strip()][:limit_lines]
    text = "\n".join(kept)
    if len(text) > limit_chars:
        text = text[:limit_chars] + "\n[…]"
    return text or "the compiler failed without a message"


def failure(lines: list[str], code: int, memory_mb: int, what: str) -> BuildFailed:
    """A failed compile as the user should read it."""
    joined = "\n".join(lines).lower()
    if any(
        sign in joined
        for sign in ("out of memory", "cannot allocate memory", "bad_alloc", "memory exhausted")
    ):
        return BuildFailed(
            f"the build ran out of memory (limit: {memory_mb} MB per compiler process)\n"
            + compiler_message(lines)
        )
    if code < 0 or code in (128 + 9, 128 + 6, 128 + 11):
        return BuildFailed(
            f"the compiler was killed (exit status {code}; memory limit {memory_mb} MB)\n"
            + compiler_message(lines)
        )
    return BuildFailed(f"{what}:\n{compiler_message(lines)}")

"""Many distinct functions of one kind, for the density comparison.

Content addressing merges identical artifacts (one precompiled module, one
cache entry), so every variant must differ: Python and JavaScript variants
return their own number; compiled variants are one module built from source
by the platform, with the greeting in its data segment rewritten in place
(`Hello, ` → `Hbcdf, `): same length, so the module stays valid, yet a new
sha256, a new precompiled artifact and a visibly different answer.
"""

from __future__ import annotations

import string
from pathlib import Path

from store import open_store
from store.functions import FunctionRepo

PY_SOURCE = "def main(event):\n    return {{'variant': {n}, 'echo': event}}\n"
JS_SOURCE = "exports.main = (event) => ({{variant: {n}, echo: event}});\n"
SOURCES = {"python": PY_SOURCE, "javascript": JS_SOURCE}

GREETING = b"Hello, "  # the examples' `Hello, <name>!`: Rust keeps only this piece
_LETTERS = string.ascii_lowercase
_TAG_LEN = 4  # 26**4 variants; the greeting has 4 letters after its H to replace


def source(runtime: str, n: int) -> str:
    return SOURCES[runtime].format(n=n)


def tag(n: int) -> str:
    """`n` in four lower-case letters (0 → 'aaaa')."""
    letters = []
    for _ in range(_TAG_LEN):
        n, digit = divmod(n, len(_LETTERS))
        letters.append(_LETTERS[digit])
    if n:
        raise ValueError("too many variants for a four-letter tag")
    return "".join(reversed(letters))


def greeting(n: int) -> str:
    """What variant `n` says instead of `Hello, `."""
    return f"H{tag(n)}, "


def patched_module(wasm: bytes, n: int) -> bytes:
    """`wasm` with its one greeting rewritten for variant `n`."""
    found = wasm.count(GREETING)
    if found != 1:
        raise ValueError(f"the module holds {found} copies of {GREETING!r}, not one")
    return wasm.replace(GREETING, greeting(n).encode())


def built_module(data_dir: Path, name: str) -> bytes:
    """The module the platform built for function `name`, read from its local store."""
    repo = FunctionRepo(open_store(f"file://{data_dir}"))
    fn, _ = repo.resolve(name)
    if fn.active_version is None:
        raise ValueError(f"{name} has no ready version")
    version, _ = repo.get_version(fn.id, fn.active_version)
    if version.build.artifact_key is None:
        raise ValueError(f"{name} v{fn.active_version} has no artifact")
    return repo.read_blob(version.build.artifact_key)

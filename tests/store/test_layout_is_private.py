"""Only `store` knows where things are kept: other packages use its repositories.

Issue 12 §3: a module outside `store/` that builds a store key (imports a key
builder, or spells a key prefix) would break silently when the layout moves.
These checks walk the source, so code added later is covered too.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "compiler", "sandbox", "console", "cli", "bench", "runtimes", "scripts")

# Names store exports that end like key builders but are not store keys.
NOT_KEYS = {
    "new_webhook_key",  # mints a webhook secret
    "api_key",
}
NOT_KEY_STRINGS = {"invocations/s"}  # a bench unit
KEY_NAME = re.compile(r"(_key|_keys|_prefix|_KEY|_PREFIX)$")


@functools.cache
def _top_level_prefixes() -> frozenset[str]:
    """The first path segment of every key layout store spells ("functions/", ...)."""
    found: set[str] = set()
    for path in (ROOT / "store").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            for text in _strings(node):
                if m := re.fullmatch(r"([a-z][a-z-]+/)[^\s]*", text):
                    found.add(m.group(1))
    return frozenset(found)


def _sources() -> list[Path]:
    return sorted(
        p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if ".venv" not in p.parts
    )


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return [str(node.values[0].value)]
    return []


def test_the_walk_sees_the_layout():
    prefixes = _top_level_prefixes()
    assert {"functions/", "versions/", "blobs/", "logs/", "stats/", "precompiled/"} <= prefixes
    assert len(_sources()) > 100


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outside_store_builds_store_keys(path: Path):
    tree = ast.parse(path.read_text())
    prefixes = _top_level_prefixes()
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "store":
            for alias in node.names:
                if KEY_NAME.search(alias.name) and alias.name not in NOT_KEYS:
                    problems.append(f"line {node.lineno}: imports key builder {alias.name}")
        for text in _strings(node):
            head, slash, _ = text.partition("/")
            if slash and head + "/" in prefixes and text not in NOT_KEY_STRINGS:
                problems.append(f"line {node.lineno}: spells a store key {text!r}")
    assert not problems, f"{path.relative_to(ROOT)} builds store keys:\n" + "\n".join(problems)


# Objects that hold the opened Store and hand it to what they wire (not repositories);
# `inst`: a sandbox HandlerInstance, whose `store` is its wasmtime.Store (bench/
# fresh_breakdown.py times closing it), not ours.
STORE_HOLDERS = {"self", "platform", "inst"}
STORE_IO = {"get", "put", "list", "delete", "exists", "head", "get_file", "put_file"}


def reaches_into_store(tree: ast.AST) -> list[str]:
    """`repo.store` / `self.repo.store` (taking the raw store back out of a
    repository), and raw I/O on a store an object keeps (`self.store.put(…)`):
    whoever reads or writes objects under keys of its own keeps a repository."""
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = ast.unparse(node.value)
        if node.attr == "store" and owner not in STORE_HOLDERS:
            problems.append(f"line {node.lineno}: reaches into {owner}.store")
        elif node.attr in STORE_IO and owner.endswith(".store"):
            problems.append(f"line {node.lineno}: raw store I/O {owner}.{node.attr}")
    return sorted(problems)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outside_store_reaches_into_a_store(path: Path):
    problems = reaches_into_store(ast.parse(path.read_text()))
    assert not problems, f"{path.relative_to(ROOT)} bypasses store's repositories:\n" + "\n".join(
        problems
    )


def test_the_store_check_catches_each_bypass():
    planted = ast.parse(
        "self.repo.store.get('functions/x.json')\n"
        "repo.store\n"
        "self.store.put('x', b'')\n"
        "self.store = store\n"
        "platform.store\n"
        "Sandbox(store)\n"
    )
    assert reaches_into_store(planted) == [
        "line 1: raw store I/O self.repo.store.get",
        "line 1: reaches into self.repo.store",
        "line 2: reaches into repo.store",
        "line 3: raw store I/O self.store.put",
    ]

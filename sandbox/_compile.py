"""Compiling a large wasm in a child process, on all cores.

PERF(sandbox): a gunicorn worker is forked from a master that may have used
wasmtime, so it compiles on one thread (the fork trap in `_engine.py`): a
4.5 MB Go module took 4–15 s. A fresh child process has no such past: it
compiles with the same engine settings and parallel compilation, and hands
back the serialized artifact, which the worker deserializes with its own
engine (wasmtime checks that the two agree) and checks like any other. The
child is the platform compiling wasm it has already hash-checked; it sees
an empty environment apart from PATH.

    python -m sandbox._compile module|component IN.wasm OUT.cwasm

PERF(sandbox): the child imports wasmtime and the engine's settings, nothing
more: `-m sandbox._compile` ran the `sandbox` and `store` packages' __init__
first (the Sandbox, the store, pydantic), 0.26 s of CPU and 0.6–0.8 s of
wall under load where 0.1 s and 0.2–0.35 s do. `_CHILD` registers both as
bare packages, so `sandbox._engine` and `store.errors` load alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from store import errors

_TIMEOUT_SEC = 600
_children: set[subprocess.Popen] = set()  # compiles running now (end_compiles ends them)
_ended: set[subprocess.Popen] = set()  # of those, the ones end_compiles killed
_children_lock = threading.Lock()
_CHILD = """\
import json, resource, sys, types
limit = int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
for name, folder in json.loads(sys.argv.pop(1)).items():
    package = types.ModuleType(name)
    package.__path__ = [folder]
    sys.modules[name] = package
from sandbox._compile import main
sys.exit(main(sys.argv[1:]))
"""
_PACKAGES = json.dumps(
    {"sandbox": str(Path(__file__).parent), "store": str(Path(errors.__file__).parent)}
)


def compile_in_child(wasm: bytes, kind: str, memory_mb: int = 2048) -> bytes:
    """The serialized artifact of `wasm`, compiled by a child process of at most
    `memory_mb` (RLIMIT_DATA).

    NOTE(security): compiling is the one step that turns a user's bytes into work the
    size of *their* choosing: 1.2 MB of 300,000 empty functions took 60 s and 1.7 GB
    (63 MB of machine code), and the 50 MB upload limit allows far more. Past the
    bound the compile fails (an invalid artifact naming the limit), not the machine."""
    with tempfile.TemporaryDirectory(prefix="nimbus-compile-") as tmp:
        source, out = Path(tmp) / "in.wasm", Path(tmp) / "out.cwasm"
        source.write_bytes(wasm)
        limit = str(memory_mb << 20)
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, limit, _PACKAGES, kind, str(source), str(out)],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with _children_lock:
            _children.add(child)
        try:
            _, stderr = child.communicate(timeout=_TIMEOUT_SEC)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise errors.Invalid(f"compiling the {kind} took over {_TIMEOUT_SEC} s") from None
        finally:
            with _children_lock:
                _children.discard(child)
                ended = child in _ended
                _ended.discard(child)
        if ended:
            raise errors.Unavailable("the server is stopping: the compile was ended")
        if child.returncode != 0:
            text = stderr.decode(errors="replace")
            if "memory allocation of" in text or "MemoryError" in text or child.returncode < 0:
                raise errors.Invalid(
                    f"compiling the {kind} needs more than {memory_mb} MB of memory "
                    "(BUILD_MEMORY_MB): it has too much code"
                )
            lines = text.strip().splitlines() or ["(no output)"]
            raise errors.Invalid(f"invalid {kind}: {lines[-1]}")
        return out.read_bytes()


def end_compiles() -> int:
    """Kill every compile child still running (the worker is stopping: a compile may take
    minutes and gigabytes, and would outlive it); their callers get `Unavailable`."""
    with _children_lock:
        children = list(_children)
        _ended.update(children)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
    return len(children)


def main(argv: list[str]) -> int:
    import wasmtime
    from wasmtime import component

    from ._engine import make_config

    kind, source, out = argv
    engine = wasmtime.Engine(make_config())
    wasm = Path(source).read_bytes()
    try:
        compiled = wasmtime.Module(engine, wasm) if kind == "module" else (
            component.Component(engine, wasm))  # fmt: skip
    except wasmtime.WasmtimeError as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 1
    Path(out).write_bytes(compiled.serialize())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""One fresh process, one first call: run by the cold-start comparison, prints JSON.

    python -m bench.fresh_worker sandbox lazy|started STORE_DIR CACHE_DIR KEY SHA256
    python -m bench.fresh_worker raw CWASM_PATH

Imports happen at worker start and are never timed. `setup_ms` is the worker
start we can see: `Sandbox(...)` (plus `Sandbox.start()`, which makes the
engine, in the `started` variant) or the raw `Engine()`. `first_ms` is the
first call; with `lazy` the sandbox makes its engine inside it, as a gateway
worker that never calls `start()` does.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path


def sandbox_first_call(engine: str, store_dir: str, cache_dir: str, key: str, sha256: str) -> dict:
    import sandbox  # noqa: F401 - imports are worker start, not the first call
    import store  # noqa: F401

    from . import sandboxed
    from .wasm import EVENT

    t0 = time.perf_counter()
    worker = sandboxed.open_sandbox(Path(store_dir), Path(cache_dir))
    if engine == "started":
        worker.start()
    deployment = sandboxed.deployment(sandboxed.StoredArtifact(Path(store_dir), key, sha256))
    context = sandboxed.context()
    t1 = time.perf_counter()
    first = worker.invoke(deployment, EVENT, context)
    t2 = time.perf_counter()
    second = worker.invoke(deployment, EVENT, context)
    t3 = time.perf_counter()
    return {
        "setup_ms": (t1 - t0) * 1000,
        "first_ms": (t2 - t1) * 1000,
        "second_ms": (t3 - t2) * 1000,
        "cold_start": [first.cold_start, second.cold_start],
        "init_ms": getattr(first, "init_ms", 0.0),  # loading the artifact, as the sandbox saw it
        "ok": first.error is None and bytes(first.output) == EVENT,
        "error": None if first.error is None else str(first.error),
    }


def raw_first_call(cwasm: str) -> dict:
    import wasmtime

    from .rawwasm import RawRunner, shm_dir
    from .wasm import EVENT

    io_dir = shm_dir()
    try:
        t0 = time.perf_counter()
        engine = wasmtime.Engine()
        t1 = time.perf_counter()
        runner = RawRunner.deserialize_file(engine, Path(cwasm), io_dir)
        out = runner.call(EVENT)
        t2 = time.perf_counter()
        runner.call(EVENT)
        t3 = time.perf_counter()
    finally:
        shutil.rmtree(io_dir, ignore_errors=True)
    return {
        "setup_ms": (t1 - t0) * 1000,
        "first_ms": (t2 - t1) * 1000,
        "second_ms": (t3 - t2) * 1000,
        "ok": out == EVENT,
    }


def main(argv: list[str]) -> None:
    mode, *args = argv
    result = sandbox_first_call(*args) if mode == "sandbox" else raw_first_call(*args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

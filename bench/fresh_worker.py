"""One fresh process, one first call: run by the cold-start comparison, prints JSON.

    python -m bench.fresh_worker sandbox lazy|started STORE_DIR CACHE_DIR KEY SHA256
    python -m bench.fresh_worker raw CWASM_PATH
    python -m bench.fresh_worker function STORE_DIR DATA_DIR NAME EVENT_JSON CALLS [profile]
    python -m bench.fresh_worker prewarmed STORE_DIR DATA_DIR NAME EVENT_JSON CALLS 0|1

Imports happen at worker start and are never timed. `setup_ms` is the worker
start we can see: `Sandbox(...)` (plus `Sandbox.start()`, which makes the
engine, in the `started` variant) or the raw `Engine()`. `first_ms` is the
first call; with `lazy` the sandbox makes its engine inside it, as a gateway
worker that never calls `start()` does.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def spawn(*args: str) -> dict:
    """Run `python -m bench.fresh_worker ARGS` in a new process; its JSON line, checked."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.fresh_worker", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"fresh worker {args[0]} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result.get("ok"):
        raise RuntimeError(f"fresh worker {args[0]}: the call failed: {result}")
    return result


def first_invoke(
    store_dir: Path, data_dir: Path, name: str, event: bytes, calls: int = 0, profile: bool = False
) -> dict:
    """A new gateway worker over `store_dir` with the empty `data_dir`: its first invoke
    of `name`, then `calls` more (see `gateway_first_call`)."""
    args = [str(store_dir), str(data_dir), name, event.decode(), str(calls)]
    return spawn("function", *args, *(["profile"] if profile else []))


def profile_note(store_dir: Path, data_dir: Path, name: str, event: bytes) -> str:
    """A report note: where one more fresh worker's first invoke spends its time."""
    got = first_invoke(store_dir, data_dir, name, event, profile=True)
    return (f"profile of one more first invoke ({got['first_ms']:.1f} ms under cProfile; "
            f"cumulative, our code): " + "; ".join(got["profile"]))  # fmt: skip


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


def gateway_first_call(
    store_dir: str, data_dir: str, name: str, event: str, calls: str, profile: str = ""
) -> dict:
    """A gateway worker as `nimbus serve` makes one, over another server's store: its own
    empty data dir (so an empty local cache), the engine made and the shared runtimes
    preloaded at worker start, then the gateway's own invoke path, record read included.
    `calls` more invocations after the first give the per-call cost (a fresh instance each);
    `profile` = "profile" profiles the first invoke (cProfile: its timing then counts it)."""
    from gateway.platform import Platform
    from gateway.settings import Settings

    settings = Settings(data_dir=Path(data_dir), nimbus_store=f"file://{store_dir}")
    t0 = time.perf_counter()
    platform = Platform.open(settings)
    platform.sandbox.start()
    t1 = time.perf_counter()
    # NOTE(bench): Platform.start() runs this in a thread next to the build queue and
    # async workers; here it runs to the end before the first call, timed on its own.
    platform._preload_runtimes()
    profiler = cProfile.Profile() if profile == "profile" else None
    t2 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    first = platform.invocations.invoke(name, event.encode(), {})
    t3 = time.perf_counter()
    if profiler is not None:
        profiler.disable()
    cold_flags, later, later_run = [first.result.cold_start], [], []
    for _ in range(int(calls)):
        t4 = time.perf_counter()
        result = platform.invocations.invoke(name, event.encode(), {}).result
        later.append((time.perf_counter() - t4) * 1000)
        cold_flags.append(result.cold_start)
        later_run.append(result.duration_ms)
    error = first.result.error
    return {
        "start_ms": (t1 - t0) * 1000,
        "preload_ms": (t2 - t1) * 1000,
        "first_ms": (t3 - t2) * 1000,
        "later_ms": statistics.median(later) if later else None,
        "later_run_ms": statistics.median(later_run) if later else None,  # the guest's part
        "init_ms": first.result.init_ms,  # loading the artifact (store → cache → engine)
        "run_ms": first.result.duration_ms,  # the guest's instantiate + call
        "cold_start": cold_flags,
        "output": bytes(first.result.output).decode(errors="replace"),
        "ok": error is None,
        "error": None if error is None else f"{error.type}: {error.message}",
        "profile": [] if profiler is None else where_time_went(profiler),
    }


def prewarmed_calls(
    store_dir: str, data_dir: str, name: str, event: str, calls: str, prewarm: str
) -> dict:
    """A gateway worker over another server's store, calling `name` once every ~30 ms
    through its own invoke path: with `prewarm` = "1" each call finds a pre-warmed
    instance ready (it waits for the stock first), with "0" each makes its own."""
    from gateway.platform import Platform
    from gateway.settings import Settings

    settings = Settings(data_dir=Path(data_dir), nimbus_store=f"file://{store_dir}",
                        prewarm_per_function=int(prewarm))  # fmt: skip
    platform = Platform.open(settings)
    platform.sandbox.start()
    platform._preload_runtimes()
    first = platform.invocations.invoke(name, event.encode(), {}).result  # loads, pre-warms
    times, ready = [], 0
    cpu_started = time.process_time()  # every thread: the calls and the refills alike
    for _ in range(int(calls)):
        waited = time.monotonic()
        while int(prewarm) and platform.sandbox.stats()["prewarmed_instances"] < 1:
            if time.monotonic() - waited > 5:
                break
            time.sleep(0.005)
        ready += platform.sandbox.stats()["prewarmed_instances"] >= 1
        time.sleep(0.03)  # the refill thread idle again, as between sparse calls
        t0 = time.perf_counter()
        result = platform.invocations.invoke(name, event.encode(), {}).result
        times.append((time.perf_counter() - t0) * 1000)
        if result.error is not None:
            first = result
            break
    waited = time.monotonic()  # the last call's refill belongs to it too
    while int(prewarm) and platform.sandbox.stats()["prewarmed_instances"] < 1:
        if time.monotonic() - waited > 5:
            break
        time.sleep(0.005)
    cpu_ms = (time.process_time() - cpu_started) * 1000
    error = first.error
    return {
        "median_ms": statistics.median(times) if times else None,
        "cpu_ms_per_call": cpu_ms / len(times) if times else None,
        "min_ms": min(times) if times else None,
        "ready": ready,
        "calls": len(times),
        "ok": error is None and len(times) == int(calls),
        "error": None if error is None else f"{error.type}: {error.message}",
    }


def where_time_went(profiler: cProfile.Profile, top: int = 10) -> list[str]:
    """Our functions by cumulative time in the profiled call (the main thread only: a
    component's guest runs in a guarded thread and shows as a wait)."""
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    ours = [(ct, f"{Path(file).relative_to(REPO)}:{name}") for (file, _, name), (_, _, _, ct, _)
            in stats.items() if file.startswith(str(REPO)) and "/.venv/" not in file]  # fmt: skip
    return [f"{label} {ct * 1000:.1f} ms" for ct, label in sorted(ours, reverse=True)[:top]]


MODES = {
    "sandbox": sandbox_first_call,
    "raw": raw_first_call,
    "function": gateway_first_call,
    "prewarmed": prewarmed_calls,
}


def main(argv: list[str]) -> None:
    mode, *args = argv
    result = MODES[mode](*args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

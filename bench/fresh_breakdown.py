"""Where the CPU of one fresh-instance call goes, in-process, for the Python or JavaScript hello.

    python -m bench.fresh_breakdown python|javascript [--calls N] [--keep-kb K] [--prewarm N]
                                    [--runtime-wasm PATH]

One process per run (the pool's settings are the engine's): a real `Sandbox` over
a local store holding the installed runtime and the hello's source, then, per call
and on this thread, the thread CPU (user + system) and minor faults of each step a
fresh call takes:

- `logs`: the two capped log memfds made, opened by wasmtime, read back, closed;
- `instantiate`: `HandlerInstance(...)` (store, limits, WASI config with the logs,
  `linker.instantiate`), with `linker` (wasmtime's instantiation alone) inside it;
- `run`: the guest call `run(source, handler, event, context)` on the fresh instance;
- `close`: the store dropped (the pool slot reset: memcpy of the kept-resident
  prefix, `madvise` beyond it) and the logs closed.

The pre-warmed path, on other fresh instances in the same loop: `load` (the
`load` export: the bundle evaluated, the runtime's call path taken once with a
no-op), `warm_run` (the host's warm-up of `run`: platform data through the export's
path, the runtime's own echo in place of the handler, no user code), `prewarmed_run`
(the first real `run` after both: what a pre-warmed call costs on the request path),
`again` (a second `run`: the handler on a warm instance).
`handoff` is a guarded Python thread's hand-off (`GuestThreads.run` of a no-op),
`invoke` the whole `Sandbox.invoke` called in a loop (process CPU per call, all
threads: hand-off, pre-warming and the slot reset wherever they run), and `busy`
the same from 8 callers at once (with `busy_rate`, calls per second). Prints one
JSON line of medians (ms, faults).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .workloads import HELLO_EVENT, JS_HANDLER, PY_HANDLER


def _now() -> tuple[float, int]:
    return time.thread_time(), resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def _since(mark: tuple[float, int]) -> tuple[float, int]:
    cpu, faults = _now()
    return (cpu - mark[0]) * 1000, faults - mark[1]


class _TimedLinker:
    """The component linker, with the time of its `instantiate` kept."""

    def __init__(self, linker) -> None:
        self._linker = linker
        self.last = (0.0, 0)

    def instantiate(self, store, comp):
        mark = _now()
        try:
            return self._linker.instantiate(store, comp)
        finally:
            self.last = _since(mark)


def _deployment(lang: str, store_dir: Path, runtime_wasm: Path | None):
    from compiler.runtimes import javascript as js
    from compiler.runtimes import python_runtime as rt
    from sandbox import Deployment, Mount
    from store import LocalStore
    from store.functions import FunctionRepo

    repo = FunctionRepo(LocalStore(store_dir))
    built = rt.installed() if lang == "python" else js.installed()
    if built is None:
        raise SystemExit(f"the {lang} runtime is not installed (scripts/runtimes/)")
    wasm = repo.put_blob_file(runtime_wasm or built.wasm)
    if lang == "python":
        source = json.dumps({"handler.py": PY_HANDLER}).encode()
        mounts = (Mount(rt.STDLIB_MOUNT, *repo.put_blob_file(built.stdlib)),)
    else:  # a CommonJS bundle as esbuild makes one for this one-file hello
        source, mounts = JS_HANDLER.encode(), ()
    source_key, source_sha = repo.put_blob(source)
    return Deployment(
        function_id=f"fn_bench{lang}",
        function_name=f"hello-{lang}",
        version=1,
        artifact_key=wasm[0],
        artifact_sha256=wasm[1],
        kind="runtime",
        handler="handler.main",
        source_key=source_key,
        source_sha256=source_sha,
        mounts=mounts,
        memory_mb=128,
        timeout_sec=30,
    )


def measure(
    lang: str, calls: int, keep_kb: int, prewarm: int, runtime_wasm: Path | None = None
) -> dict:
    import orjson

    from compiler.runtimes import python_runtime as rt
    from sandbox import Sandbox, SandboxConfig
    from sandbox._component import _WARM_UP_TEXT, LOAD, WARM_UP, HandlerInstance
    from sandbox._component_call import call_strings
    from sandbox._logs import ComponentLogs
    from sandbox._runtime_world import RUN, runtime_call
    from sandbox._types import MiB
    from store import LocalStore

    tmp = Path(tempfile.mkdtemp(prefix="nimbus-breakdown-"))
    dep = _deployment(lang, tmp / "store", runtime_wasm)
    config = SandboxConfig(
        cache_dir=tmp / "cache",
        seed_cache_dirs=(rt.SEED_CACHE_DIR,),
        pool_keep_resident_kb=keep_kb,
        prewarm_per_deployment=prewarm,
    )
    sandbox = Sandbox(LocalStore(tmp / "store"), config)
    event = orjson.dumps(HELLO_EVENT)
    context = {"invocation_id": "inv_bench"}
    try:
        sandbox.prepare(dep)
        worker = sandbox._worker()
        loaded, _ = worker.artifacts.load(dep.artifact_key, dep.artifact_sha256, "component")
        prepared = worker.prepared(dep)
        linker = _TimedLinker(worker.host.component_linker())
        ticks = worker.host.deadline_ticks(dep.timeout_sec)
        deadline_ms = int(time.time() * 1000) + 30_000
        ctx_text = orjson.dumps({"function_name": dep.function_name, "version": 1,
                                 "memory_limit_mb": 128, **context,
                                 "deadline_ms": deadline_ms}).decode()  # fmt: skip
        args = runtime_call(RUN, prepared.code)

        def loaded_load(inst: HandlerInstance):
            return inst._instance.get_func(inst.store, LOAD)

        def new() -> HandlerInstance:
            return HandlerInstance(worker.host.engine, linker, loaded, prepared.argv,
                                   dep.env_vars, dep.memory_mb * MiB, ticks, **args)  # fmt: skip

        rows: dict[str, list[tuple[float, int]]] = {}

        def keep(name: str, value: tuple[float, int]) -> None:
            rows.setdefault(name, []).append(value)

        def one_call(record: bool) -> None:
            mark = _now()
            inst = new()
            made = _since(mark)
            mark = _now()
            result = inst.call(event.decode(), ctx_text, ticks)
            ran = _since(mark)
            assert isinstance(result, str) and "Hello" in result, result
            mark = _now()
            inst.logs.take()
            inst.store.close()
            reset = _since(mark)
            mark = _now()
            inst.logs.close()
            logs_closed = _since(mark)
            if record:
                keep("instantiate", made)
                keep("linker", linker.last)
                keep("run", ran)
                keep("close", reset)
                keep("close_logs", logs_closed)

        def prewarm_path() -> None:
            inst = new()
            load_ctx = orjson.dumps(
                {"function_name": dep.function_name, "version": 1, "memory_limit_mb": 128,
                 "deadline_ms": deadline_ms}
            )  # fmt: skip
            mark = _now()
            failed = call_strings(loaded_load(inst), inst.store, *inst.leading, load_ctx.decode())
            assert failed is None, failed
            keep("load", _since(mark))
            inst.mark_loaded()
            mark = _now()
            answer = call_strings(inst.func, inst.store, "", WARM_UP, _WARM_UP_TEXT, ctx_text)
            keep("warm_run", _since(mark))
            assert answer is not None, answer
            mark = _now()
            inst.call(event.decode(), ctx_text, ticks)
            keep("prewarmed_run", _since(mark))
            mark = _now()
            inst.call(event.decode(), ctx_text, ticks)
            keep("again", _since(mark))
            inst.close()

        def logs_only() -> None:
            import wasmtime

            mark = _now()
            logs = ComponentLogs()
            logs.attach(wasmtime.WasiConfig())
            logs.take()
            logs.close()
            keep("logs", _since(mark))

        for _ in range(20):  # slots touched, code paged in
            one_call(record=False)
        for _ in range(calls):
            one_call(record=True)
            prewarm_path()
            logs_only()
        started = time.process_time()
        for _ in range(calls):
            worker.threads.run(lambda: None, 5.0)
        handoff_ms = (time.process_time() - started) * 1000 / calls
        for _ in range(10):
            sandbox.invoke(dep, event, context)
        started, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            result = sandbox.invoke(dep, event, context)
            assert result.error is None, result.error
        invoke_ms = (time.process_time() - started) * 1000 / calls
        invoke_wall_ms = (time.perf_counter() - wall) * 1000 / calls
        busy_ms, busy_rate = _concurrent(sandbox, dep, event, context, calls, threads=8)
    finally:
        sandbox.close()
        shutil.rmtree(tmp, ignore_errors=True)
    out = {name: round(statistics.median(v[0] for v in values), 3)
           for name, values in rows.items()}  # fmt: skip
    out |= {f"{name}_faults": statistics.median(v[1] for v in values)
            for name, values in rows.items()}  # fmt: skip
    out |= {"handoff": round(handoff_ms, 3), "invoke": round(invoke_ms, 3),
            "invoke_wall": round(invoke_wall_ms, 3), "busy": round(busy_ms, 3),
            "busy_rate": round(busy_rate, 1)}  # fmt: skip
    return out


def _concurrent(sandbox, dep, event: bytes, context: dict, calls: int, threads: int):
    """`calls` invokes from `threads` callers at once, as a loaded worker sees them:
    (process CPU per call in ms, calls per second)."""
    import threading

    each = max(1, calls // threads)
    failures: list[object] = []

    def caller() -> None:
        for _ in range(each):
            result = sandbox.invoke(dep, event, context)
            if result.error is not None:
                failures.append(result.error)

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    started, wall = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    cpu, elapsed = time.process_time() - started, time.perf_counter() - wall
    assert not failures, failures[:1]
    done = each * threads
    return cpu * 1000 / done, done / elapsed


def _wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lang", choices=("python", "javascript"))
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--keep-kb", type=int, default=16384)
    parser.add_argument("--prewarm", type=int, default=0)
    parser.add_argument("--runtime-wasm", type=Path, help="another build of the runtime")
    opts = parser.parse_args()
    result = measure(opts.lang, opts.calls, opts.keep_kb, opts.prewarm, opts.runtime_wasm)
    head = {"lang": opts.lang, "wasmtime": _wasmtime_version(), "keep_kb": opts.keep_kb,
            "prewarm": opts.prewarm, "runtime": str(opts.runtime_wasm or "installed")}  # fmt: skip
    print(json.dumps(head | result), flush=True)


if __name__ == "__main__":
    main()

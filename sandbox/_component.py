"""Components exporting the `handler` world (wit/handler.wit): instantiate, call `handle`.

The call goes through wasmtime's WASI preview 2, whose host calls (a sleep,
a blocking poll) cannot be interrupted by the epoch deadline, so it runs on
a guarded thread (`_threads.py`) and the caller stops waiting at the
deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import wasmtime
from wasmtime import component

from ._capi import set_epoch_deadline
from ._component_call import GuestError, Via, call_strings
from ._logs import ComponentLogs
from ._outcome import FAILED, MEMORY, OK, TIMEOUT, TOO_LARGE, Outcome, trap_cause
from ._pool import MEMORIES_PER_COMPONENT, busy, is_exhausted
from ._types import RESULT_LIMIT_BYTES, FunctionFailure

EXPORT = "handle"
LOAD = "load"  # the runtime world's: the function loaded ahead of its first call
# A handler no function has ("file.export" needs a dot): the warm-up of `run`, which the
# runtimes answer with the event (older builds refuse it), never calling the function.
WARM_UP = "nimbus-warm-up"
_WARM_UP_EVENT = {"nimbus": "warm-up", "data": [1, 2.5, None, True, "\u00e9"]}
_WARM_UP_TEXT = json.dumps(_WARM_UP_EVENT)
TABLE_ELEMENTS_LIMIT = 1_000_000
# NOTE(security): store limits count per linear memory: one memory per store (as
# the pool allows) makes memory_mb the total also when the pool is off.
INSTANCES_LIMIT = 64
TABLES_LIMIT = 32

_MAX_STACK_LINES = 64
_OOM_HINTS = ("out of memory", "memory allocation of", "memoryerror", "cannot allocate memory")


def check_handler(comp: component.Component, engine: wasmtime.Engine) -> str:
    """The world the component exports: "handler" (`handle`) or "runtime" (`run`, `check`)."""
    exports = comp.type.exports(engine)
    if EXPORT in exports:
        return "handler"
    if "run" in exports and "check" in exports:
        return "runtime"
    raise ValueError(
        "component does not export `handle` (the nimbus:function/handler world in wit/)"
    )


# wasmtime's words for an import its linker defines nothing (or nothing fitting) for.
_NOT_PROVIDED = ", but a matching implementation was not found in the linker"


def check_imports(comp: component.Component, engine: wasmtime.Engine, linker) -> None:
    """`ValueError` naming an import of `comp` that `linker` does not provide.

    Such a component deployed as active and failed every invoke, at instantiation (as
    Spin refuses to load it, its deploy fails now). wasmtime's C API has no
    `instantiate_pre` for components, but instantiation checks every import before it
    makes anything: this instantiates into a store that allows no memory and whose
    epoch deadline has passed, so right after the check the first memory, or the first
    instruction of a start function, stops it. No guest code runs.
    """
    store = wasmtime.Store(engine)
    try:
        store.set_limits(memory_size=0, table_elements=0, instances=INSTANCES_LIMIT)
        set_epoch_deadline(store._context(), 0)
        store.set_wasi(wasmtime.WasiConfig())
        linker.instantiate(store, comp)
    except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
        problem = _import_not_provided(str(exc))
        if problem is not None:
            raise ValueError(problem) from None
    finally:
        store.close()


def _import_not_provided(text: str) -> str | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or _NOT_PROVIDED not in lines[0]:
        return None
    # "Caused by:" then "0: instance export `get` has the wrong type", "1: ...".
    causes = [line.split(": ", 1)[-1] for line in lines[1:] if line != "Caused by:"]
    head = lines[0].replace(_NOT_PROVIDED, ", and Nimbus provides no matching implementation")
    return f"{head} ({': '.join(causes)})" if causes else head


@dataclass(frozen=True)
class LoadedComponent:
    kind = "component"
    component: component.Component
    world: str = "handler"  # or "runtime": a shared language runtime
    preloads: bool = False  # a runtime exporting `load` (older builds of a runtime do not)

    @classmethod
    def link(cls, comp: component.Component, engine: wasmtime.Engine) -> LoadedComponent:
        world = check_handler(comp, engine)
        return cls(comp, world, world == "runtime" and LOAD in comp.type.exports(engine))


class PreloadFailed(Exception):
    """A runtime's `load` failed (the user's top level raised or trapped): the instance
    is closed, and a call makes its own and reports the error itself."""


class HandlerInstance:
    """One instantiated component with its store and log files."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        linker: component.Linker,
        loaded: LoadedComponent,
        argv: list[str],
        env: Mapping[str, str],
        memory_bytes: int,
        deadline_ticks: int,
        *,
        export: str = EXPORT,
        leading: tuple = (),
        mounts: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.store = wasmtime.Store(engine)
        self.store.set_limits(
            memory_size=memory_bytes,
            table_elements=TABLE_ELEMENTS_LIMIT,
            instances=INSTANCES_LIMIT,
            tables=TABLES_LIMIT,
            memories=MEMORIES_PER_COMPONENT,
        )
        set_epoch_deadline(self.store._context(), deadline_ticks)  # start functions too
        self.logs = ComponentLogs()
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv
        wasi.env = list(env.items())
        self.logs.attach(wasi)
        for host, guest in mounts:  # platform-owned folders, never writable
            wasi.preopen_dir(host, guest, False)
        self.store.set_wasi(wasi)
        instance = linker.instantiate(self.store, loaded.component)
        func = instance.get_func(self.store, export)
        if func is None:
            raise ValueError(f"component does not export `{export}`")
        self.func = func
        self._instance = instance
        self._source_optional = loaded.preloads  # this runtime knows `load`: "" once loaded
        self.leading = leading  # arguments before (event, context): a runtime's source

    def preload(self, context: str, deadline_ticks: int) -> None:
        """A runtime's `load`: the function's code loaded (its top level run) now, off
        the request path, so the first `run` only calls the handler. Closes the
        instance and raises `PreloadFailed` if that fails."""
        try:
            func = self._instance.get_func(self.store, LOAD)
            if func is None:
                raise ValueError(f"component does not export `{LOAD}`")
            set_epoch_deadline(self.store._context(), deadline_ticks)
            result = call_strings(func, self.store, *self.leading, context)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:  # e.g. a loop at top level
            self.close()
            raise PreloadFailed(trap_cause(str(exc))) from None
        except BaseException:
            self.close()
            raise
        if result is not None:  # result<_, error-info>: the error record
            self.close()
            kind = getattr(result, "type", "Error")
            raise PreloadFailed(f"{kind}: {getattr(result, 'message', '')}")
        self.mark_loaded()
        self._warm_run(context, deadline_ticks)

    def _warm_run(self, context: str, deadline_ticks: int) -> None:
        """Take the `run` export's path once with platform data, none of the function's.

        PERF(sandbox): an engine compiles a function on its first call, and the
        component's glue for `run` (lifting, the export's own code) was never
        entered by `load`: that was ~0.3 ms of a pre-warmed JavaScript hello's
        first call. Both runtimes answer the handler name `WARM_UP` (which no
        function can have) with the event, before they read or call anything of
        the function; builds from before this refuse it (an instance serves one
        function) before touching the function too. Either way no user code runs.
        """
        try:
            set_epoch_deadline(self.store._context(), deadline_ticks)  # its own, as `load` had
            answer = call_strings(self.func, self.store, "", WARM_UP, _WARM_UP_TEXT, context)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            self.close()
            raise PreloadFailed(trap_cause(str(exc))) from None
        if not isinstance(answer, GuestError) and not _echoed(answer):
            self.close()  # a runtime that ran something else: never use it
            raise PreloadFailed(f"the runtime answered its warm-up with {str(answer)[:200]!r}")

    def call(self, event: str, context: str, deadline_ticks: int, via: Via | None = None) -> object:
        # PERF(sandbox): GIL kept (see _capi.py); the call below releases it.
        set_epoch_deadline(self.store._context(), deadline_ticks)
        # NOTE(sandbox): no `post_return`: wasmtime's C API runs the post-return
        # function inside the call and has made `..._func_post_return` a no-op (a
        # deprecated C call, but one that released and retook the GIL per call).
        return call_strings(self.func, self.store, *self.leading, event, context, via=via)

    def mark_loaded(self) -> None:
        """The runtime holds the function's code now (`load` or a `run` succeeded)."""
        # PERF(sandbox): later calls need no copy of the source (the runtime world
        # allows "" then): a bundle with its source map can be hundreds of KB.
        if self._source_optional and self.leading:
            self.leading = ("", *self.leading[1:])

    def close(self) -> None:
        # NOTE(sandbox): the store is deleted now, not when its last Python reference
        # goes: a trap's traceback holds it in a reference cycle until the next
        # garbage collection, and a live store keeps its pool slot.
        self.store.close()
        self.logs.close()


def _echoed(answer: object) -> bool:
    try:
        return isinstance(answer, str) and json.loads(answer) == _WARM_UP_EVENT
    except ValueError:
        return False


def run_handler(
    make_instance,
    reuse: HandlerInstance | None,
    event: str,
    context: str,
    deadline_ticks: int,
    via: Via | None = None,
) -> tuple[Outcome, HandlerInstance | None]:
    """Call `handle` once; returns the outcome and the instance if it may be reused.
    `via`: how the call itself is made (a native lane), for an instance already made."""
    started = time.perf_counter()
    inst = reuse
    try:
        if inst is None:
            inst = make_instance()
        result = inst.call(event, context, deadline_ticks, via)
    except wasmtime.WasmtimeError as exc:
        if inst is None and is_exhausted(str(exc)):
            raise busy() from None
        return _failed(inst, str(exc), started), None
    except wasmtime.Trap as exc:
        return _failed(inst, str(exc), started), None
    outcome = _from_result(result)
    if outcome.status == OK:
        inst.mark_loaded()
    outcome.logs = inst.logs.take()
    outcome.duration_ms = (time.perf_counter() - started) * 1000
    failure = outcome.failure
    if failure is not None and _mentions_oom(f"{failure.type} {failure.message}"):
        outcome = Outcome(MEMORY, logs=outcome.logs, duration_ms=outcome.duration_ms)
    keep = outcome.status in (OK, FAILED) and not inst.logs.nearly_full
    if not keep:
        inst.close()
    return outcome, inst if keep else None


def _failed(inst: HandlerInstance | None, text: str, started: float) -> Outcome:
    logs = inst.logs.take() if inst is not None else b""
    if inst is not None:
        inst.close()  # a trapped instance refuses further calls: throw it away
    outcome = _from_error(text, logs)
    outcome.logs = logs
    outcome.duration_ms = (time.perf_counter() - started) * 1000
    return outcome


def _from_result(result: object) -> Outcome:
    if isinstance(result, str):
        data = result.encode()
        if len(data) > RESULT_LIMIT_BYTES:
            return Outcome(TOO_LARGE)
        return Outcome(OK, output=data)
    # result<string, error-info>: the error case arrives as a Record.
    kind = str(getattr(result, "type", "Error") or "Error")
    message = str(getattr(result, "message", "") or "")
    stack = str(getattr(result, "stack", "") or "").splitlines()[:_MAX_STACK_LINES]
    return Outcome(FAILED, failure=FunctionFailure(type=kind, message=message, stack=stack))


def _from_error(text: str, logs: bytes) -> Outcome:
    lower = text.lower()
    if "wasm trap: interrupt" in lower:
        return Outcome(TIMEOUT)
    # NOTE(sandbox): a component's memories are not visible through wasmtime-py,
    # so running out of memory is recognised by what the guest or wasmtime said.
    if "exceeds memory limits" in lower or _mentions_oom(logs[-4096:].decode(errors="replace")):
        return Outcome(MEMORY)
    return Outcome(FAILED, failure=_trap_failure(text))


def _trap_failure(text: str) -> FunctionFailure:
    """wasmtime's component errors are text: a backtrace, then 'Caused by: wasm trap: ...'."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    cause = trap_cause(text)
    frames = [line.strip() for line in lines if line.lstrip()[:1].isdigit() and ":" in line]
    if "call stack exhausted" in cause or "stack overflow" in cause:
        kind = "StackOverflow"
    elif "unreachable" in cause:
        kind = "Unreachable"
    else:
        kind = "Trap"
    return FunctionFailure(type=kind, message=cause, stack=frames[:_MAX_STACK_LINES])


def _mentions_oom(text: str) -> bool:
    lower = text.lower()
    return any(hint in lower for hint in _OOM_HINTS)

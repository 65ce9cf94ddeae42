"""How a guest run ended, and turning wasmtime's traps and errors into that."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import wasmtime

from store import errors

from ._types import (
    LOG_LIMIT_BYTES,
    RESULT_LIMIT_BYTES,
    Deployment,
    FunctionFailure,
    InvokeResult,
    MiB,
)

# How a run ended. "failed" is the function's own failure (InvokeResult.error);
# the others become the errors the gateway maps to 504, 500 and 502.
OK, FAILED, TIMEOUT, MEMORY, TOO_LARGE = "ok", "failed", "timeout", "memory", "too_large"

_MAX_FRAMES = 32


@dataclass
class Outcome:
    status: str
    output: bytes = b""
    logs: bytes = b""
    failure: FunctionFailure | None = None
    duration_ms: float = 0.0


def truncation_note(dropped: int | None) -> bytes:
    shown = LOG_LIMIT_BYTES // (1 << 20)
    if dropped is None:
        return f"\n[nimbus: log truncated at {shown} MB]\n".encode()
    return f"\n[nimbus: log truncated at {shown} MB, {dropped} more bytes dropped]\n".encode()


def _frame_line(frame: wasmtime.Frame) -> str:
    where = frame.module_name or "module"
    name = frame.func_name or f"func[{frame.func_index}]"
    return f"at {where}!{name} (offset {frame.module_offset:#x})"


def trap_cause(text: str) -> str:
    """The line that says what happened in wasmtime's "backtrace ... Caused by:" text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("wasm trap:"):
            return line
    return lines[0] if lines else "wasm trap"


def trap_failure(trap: wasmtime.Trap) -> FunctionFailure:
    code = trap.trap_code
    message = trap_cause(str(trap.message or ""))
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        kind = "StackOverflow"
    elif code == wasmtime.TrapCode.UNREACHABLE:
        kind = "Unreachable"
    else:
        kind = "Trap"
    frames = trap.frames
    stack = [_frame_line(f) for f in frames[:_MAX_FRAMES]]
    if len(frames) > _MAX_FRAMES:
        stack.append(f"... {len(frames) - _MAX_FRAMES} more frames")
    return FunctionFailure(type=kind, message=message, stack=stack)


def error_failure(error: Exception) -> FunctionFailure:
    """A wasmtime error that is neither an exit nor a plain trap (e.g. a link error,
    or `proc_exit` with a status of 126 or more): the message is what wasmtime gives
    as the cause, the stack its backtrace."""
    text = str(error).strip() or "wasm error"
    trace, caused_by, cause = text.partition("Caused by:")
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    if caused_by:
        causes = [line.strip() for line in cause.splitlines() if line.strip()]
        message = causes[0] if causes else lines[0]
        lines = lines[1:]  # "error while executing at wasm backtrace:"
    else:
        message, lines = lines[0], lines[1:]
    return FunctionFailure(type="Trap", message=message, stack=lines[:_MAX_FRAMES])


# A command reports its own error as the last line of its stderr: an ASCII
# record separator and a JSON object {"type", "message", "stack": [...]}, then a
# non-zero exit. The compiled languages' handler glue does (compiler/glue/).
RECORD_SEPARATOR = b"\x1e"


def reported_failure(stderr: bytes) -> tuple[FunctionFailure, bytes] | None:
    """The guest's error record and the log before it, or None without one."""
    at = stderr.rfind(RECORD_SEPARATOR)
    if at < 0:
        return None
    try:
        record = orjson.loads(stderr[at + 1 :])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    kind, message, stack = record.get("type"), record.get("message"), record.get("stack", [])
    if not isinstance(kind, str) or not isinstance(message, str) or not isinstance(stack, list):
        return None
    logs = stderr[:at]
    if logs.endswith(b"\n"):  # the record's own line break
        logs = logs[:-1]
    frames = [str(frame) for frame in stack[:_MAX_FRAMES]]
    return FunctionFailure(type=kind, message=message, stack=frames), logs


def exit_failure(code: int) -> FunctionFailure:
    return FunctionFailure(
        type="ExitError", message=f"function exited with status {code}", exit_code=code
    )


def is_interrupt(trap: wasmtime.Trap) -> bool:
    return trap.trap_code == wasmtime.TrapCode.INTERRUPT


def memory_near_limit(used: int, limit: int) -> bool:
    """A failed guest whose memory ended this close to its cap ran out of memory.

    NOTE(sandbox): wasmtime's C API cannot make a refused `memory.grow` trap,
    the guest sees -1 and fails in its own way (abort, trap, exit code). So a
    failure is attributed to memory when the memory had grown to within one
    allocation step (1/16 of the cap, at least 1 MiB) of the limit.
    """
    return used >= limit - max(1 << 20, limit // 16)


def _content_type(output: bytes) -> str:
    if output:
        try:
            orjson.loads(output)
            return "application/json"
        except orjson.JSONDecodeError:
            pass
    return "text/plain"


def to_result(dep: Deployment, outcome: Outcome, cold: bool, init_ms: float) -> InvokeResult:
    if outcome.status in (OK, FAILED):
        return InvokeResult(
            output=outcome.output,
            content_type=_content_type(outcome.output),
            logs=outcome.logs,
            cold_start=cold,
            duration_ms=outcome.duration_ms,
            error=outcome.failure if outcome.status == FAILED else None,
            init_ms=init_ms,
        )
    if outcome.status == TIMEOUT:
        exc: errors.NimbusError = errors.Timeout(f"function timed out after {dep.timeout_sec:g} s")
    elif outcome.status == MEMORY:
        exc = errors.MemoryLimitExceeded(
            f"function exceeded its memory limit of {dep.memory_mb} MB"
        )
    elif outcome.status == TOO_LARGE:
        exc = errors.ResultTooLarge(
            f"function result is larger than {RESULT_LIMIT_BYTES // MiB} MB"
        )
    else:  # pragma: no cover - every status is handled above
        raise AssertionError(outcome.status)
    exc.logs = outcome.logs
    exc.duration_ms = outcome.duration_ms
    exc.cold_start = cold
    raise exc

"""Where every invocation's outcome goes: logs, stats and metrics, off the request path."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from store.records import Trigger, now

# Refused with 429 before it ran (no free slot): counted, never logged.
THROTTLED = "throttled"


@dataclass
class InvocationOutcome:
    """One finished (or refused) invocation, as the recorder sees it."""

    invocation_id: str
    function_id: str
    function_name: str
    runtime: str
    version: int
    trigger: Trigger
    status: str  # "succeeded" | "failed" | "timed_out" | THROTTLED
    source: str | None = None  # what started it, beyond the trigger: a workflow execution's id
    error_code: str | None = None  # function_error, timeout, memory_limit_exceeded, …
    error_type: str | None = None  # the function's own error type, for function errors
    duration_ms: float = 0.0
    cold_start: bool = False
    output: bytes = b""  # stdout of a program / the returned result
    logs: bytes = b""  # stderr: the function's log
    started_at: datetime = field(default_factory=now)


class InvocationRecorder:
    """Takes outcomes without blocking; subclasses write them somewhere."""

    def record(self, outcome: InvocationOutcome) -> None:
        """Accept one outcome; must return at once (the caller is on the request path)."""

    def disown(self, invocation_id: str) -> None:
        """Drop the outcome of this invocation if it comes: its run was handed back (the
        worker is stopping) and another worker runs it, whose outcome is the one counted."""

    def start(self) -> None:
        """Start background flushing (in the worker, after fork)."""

    def stop(self) -> None:
        """Flush what is pending and stop."""

"""A function's `max_concurrency`: at most that many of its invocations run at once
on this server (every gunicorn worker of one `nimbus serve`), as Lambda's reserved
concurrency caps a function; beyond it a call is throttled (429).

NOTE(nimbus): the count is shared by the worker processes through POSIX record
locks: a function's file under `DATA_DIR/run/concurrency/` has one lockable byte
per slot, and a running invocation holds one. The kernel drops a process's
locks when it dies, so a worker killed with -9 never leaks a slot, and taking
one costs a few system calls, never a store write. Record locks belong to the
process, not the thread, so each process also remembers which bytes its own
threads hold. With R replicas (each its own DATA_DIR) a function runs at most
R × max_concurrency at once.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from store import errors

_MAX_OPEN_FILES = 256  # per process; a file is closed only when none of its slots is held


class ConcurrencyLimitReached(errors.LimitExceeded):
    """The function already runs `max_concurrency` invocations (the caller may retry)."""


@dataclass(frozen=True)
class Slot:
    function_id: str
    offset: int


class _SlotFile:
    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.held: set[int] = set()  # offsets this process's threads hold
        self.next = 0  # where the next search starts: spreads slots, shortens scans


class FunctionConcurrency:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._files: OrderedDict[str, _SlotFile] = OrderedDict()

    def acquire(self, function_id: str, limit: int) -> Slot | None:
        """A slot of the function's `limit`, or None when all are taken on this server."""
        if limit <= 0:
            return None
        with self._lock:
            slots = self._file(function_id)
            for i in range(limit):
                offset = (slots.next + i) % limit
                if offset in slots.held:
                    continue
                try:
                    fcntl.lockf(slots.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                except OSError:  # another worker holds it
                    continue
                slots.held.add(offset)
                slots.next = offset + 1
                return Slot(function_id, offset)
        return None

    def throttle(self, function_id: str, name: str, limit: int) -> Slot:
        """`acquire`, or `ConcurrencyLimitReached` naming the limit."""
        slot = self.acquire(function_id, limit)
        if slot is None:
            message = (
                f"function {name} already runs its max_concurrency of {limit} invocations"
                if limit
                else f"function {name} is throttled: its max_concurrency is 0 (every call is "
                "refused until it is raised or removed)"
            )
            raise ConcurrencyLimitReached(
                message,
                retry_after=1,
                details={"reason": "function_concurrency_limit", "max_concurrency": limit},
            )
        return slot

    def release(self, slot: Slot) -> None:
        with self._lock:
            slots = self._files.get(slot.function_id)
            if slots is None or slot.offset not in slots.held:
                return
            fcntl.lockf(slots.fd, fcntl.LOCK_UN, 1, slot.offset)
            slots.held.discard(slot.offset)

    def running(self, function_id: str, limit: int) -> int:
        """How many of the first `limit` slots are held on this server (for tests and views)."""
        with self._lock:
            slots = self._file(function_id)
            taken = len(slots.held)
            for offset in range(limit):
                if offset in slots.held:
                    continue
                try:
                    fcntl.lockf(slots.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                except OSError:
                    taken += 1
                else:
                    fcntl.lockf(slots.fd, fcntl.LOCK_UN, 1, offset)
            return taken

    def _file(self, function_id: str) -> _SlotFile:
        slots = self._files.get(function_id)
        if slots is None:
            if not function_id.replace("_", "").isalnum():
                raise errors.Invalid(f"not a function id: {function_id!r}")
            slots = self._files[function_id] = _SlotFile(self.directory / function_id)
            self._close_idle()
        self._files.move_to_end(function_id)
        return slots

    def _close_idle(self) -> None:
        # NOTE: closing any descriptor of a file drops every lock this process holds
        # on it, so only files none of whose slots are held are closed.
        for function_id in list(self._files):
            if len(self._files) <= _MAX_OPEN_FILES:
                return
            if not self._files[function_id].held:
                os.close(self._files.pop(function_id).fd)

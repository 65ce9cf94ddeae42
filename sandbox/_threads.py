"""Guarded threads for guest calls that may block in a host call past their deadline.

The epoch deadline stops wasm code, but not a host call in progress: a
component sleeping in WASI preview 2 keeps its thread until the sleep ends
(FIELD-NOTES.md, "the sleep trap"). Such calls run here: the caller waits
until the deadline (plus a little grace for the epoch trap to land) and then
stops waiting. The thread that is still inside the guest is *stuck*: it is
counted, and while `stuck_limit` threads are stuck no new guarded call is
accepted (`LimitExceeded`), so stuck guests cannot pile up and starve the
worker. A stuck thread that finally returns drops its result (its caller
has gone) and becomes idle again.

A thread stuck for good (a guest sleeping for years) never returns: nothing
in the process can stop it, only the process's exit reclaims it. So when
`replace_at` threads are stuck (half the bound), `on_replace` is called, with
which the process model replaces the whole worker process, draining its calls
in flight first (gateway/serve.py). Half, so that the calls a draining worker
still takes (gunicorn answers requests on its kept-alive connections for up
to 2 s) find room below the bound instead of a 429.

`run_native` guards one C call on a native lane instead (`_lanes.py`, built
from `_native/lane.c`): no Python runs on the guest's side, so the caller
releases the GIL once, as for an unguarded call. Used for a call into an
instance already made (reused or pre-warmed); a stuck lane is counted like a
stuck thread and serves again once its call returns (seen on the next call).
"""

from __future__ import annotations

import _thread
import ctypes
import threading
from collections.abc import Callable, Sequence
from typing import Any

from store import errors

from . import _lanes


class Abandoned(Exception):
    """The guest did not return by the deadline; its thread was left behind."""


class _Job:
    """One call handed to a guest thread. `done` is a raw lock held until the call ends.

    PERF(sandbox): a raw lock per job and one per thread instead of an `Event` and a
    `SimpleQueue`: an Event's wait makes a Condition waiter and its set walks the
    waiters, all Python run with the GIL held, twice per call. In-process with 8
    callers that hand-off was ~0.13 ms of CPU per call (guarded 0.32-0.36 ms vs
    called inline 0.20-0.22 ms for a reused Python hello).
    """

    __slots__ = ("abandoned", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = _thread.allocate_lock()
        self.done.acquire()  # released by the guest thread when `fn` returned
        self.result: Any = None
        self.error: BaseException | None = None
        self.abandoned = False


class _Guest:
    """A guest thread's mailbox: `wake` is released when `job` is set."""

    __slots__ = ("job", "wake")

    def __init__(self) -> None:
        self.job: _Job | None = None
        self.wake = _thread.allocate_lock()
        self.wake.acquire()


class GuestThreads:
    def __init__(
        self,
        stuck_limit: int,
        replace_at: int | None = None,
        on_replace: Callable[[int], None] | None = None,
    ) -> None:
        self.stuck_limit = stuck_limit
        self.replace_at = replace_at if replace_at is not None else stuck_limit
        self.on_replace = on_replace  # called with the count each time `replace_at` is reached
        self._lock = threading.Lock()
        self._idle: list[_Guest] = []
        self._stuck = 0
        self._threads = 0
        self.lanes = _lanes.library()  # None: every guarded call takes a Python thread
        self._free_lanes: list[int] = []
        self._stuck_lanes: list[tuple[int, Callable[[int | None], None]]] = []

    @property
    def stuck(self) -> int:
        self._reap_lanes()
        return self._stuck

    def check_capacity(self) -> None:
        self._reap_lanes()
        if self._stuck >= self.stuck_limit:
            self._refuse()

    def _refuse(self) -> None:
        raise errors.LimitExceeded(
            f"worker busy: {self._stuck} guests are still blocked past their deadline",
            retry_after=5,
        )

    def run(self, fn: Callable[[], Any], wait_sec: float) -> Any:
        """Run `fn` on a guarded thread; `Abandoned` if it is not done in `wait_sec`."""
        job = _Job(fn)
        with self._lock:
            if self._stuck >= self.stuck_limit:
                self._refuse()  # (the lock is held: no reaping here)
            guest = self._idle.pop() if self._idle else None
            if guest is None:
                guest = _Guest()
                self._threads += 1
                threading.Thread(
                    target=self._serve,
                    args=(guest,),
                    name=f"nimbus-guest-{self._threads}",
                    daemon=True,
                ).start()
        guest.job = job
        guest.wake.release()
        if not job.done.acquire(timeout=wait_sec):
            with self._lock:
                # The guest thread releases `done` under this lock: either it has
                # (the call ended just now) or the call is abandoned, never both.
                if not job.done.acquire(blocking=False):
                    job.abandoned = True
                    self._stuck += 1
                reached = job.abandoned and self._stuck == self.replace_at
            if reached and self.on_replace is not None:
                self.on_replace(self.replace_at)
            if job.abandoned:
                raise Abandoned
        if job.error is not None:
            raise job.error
        return job.result

    def run_native(self, fn: int, args: Sequence[int], wait_sec: float,
                   on_late_return: Callable[[int | None], None]) -> int | None:  # fmt: skip
        """Call the C function `fn` (six arguments: a component call) on a native lane;
        its return value, or `Abandoned` if not back in `wait_sec`. The lane is then
        stuck, counted like a stuck thread; when it returns, `on_late_return` gets the
        value (the caller's memory must live until then)."""
        lanes = self.lanes
        assert lanes is not None
        with self._lock:
            if self._stuck >= self.stuck_limit:
                self._refuse()  # (the lock is held: no reaping here)
            lane = self._free_lanes.pop() if self._free_lanes else None
        if lane is None:
            lane = lanes.new()
            if not lane:
                raise errors.LimitExceeded("worker busy: no thread for the call", retry_after=1)
        out = ctypes.c_void_p()
        if lanes.call(lane, fn, *args, int(wait_sec * 1e9), ctypes.byref(out)) == 0:
            with self._lock:
                self._free_lanes.append(lane)
            return out.value
        with self._lock:
            self._stuck_lanes.append((lane, on_late_return))
            self._stuck += 1
            reached = self._stuck == self.replace_at
        if reached and self.on_replace is not None:
            self.on_replace(self.replace_at)
        raise Abandoned

    def _reap_lanes(self) -> None:
        """Stuck lanes whose call has returned serve again (looked at on each call)."""
        if not self._stuck_lanes:
            return
        returned = []
        with self._lock:
            out = ctypes.c_void_p()
            for entry in list(self._stuck_lanes):
                if self.lanes is not None and self.lanes.finished(entry[0], ctypes.byref(out)):
                    self._stuck_lanes.remove(entry)
                    self._stuck -= 1
                    self._free_lanes.append(entry[0])
                    returned.append((entry[1], out.value))
        for on_late_return, value in returned:
            on_late_return(value)

    def _serve(self, guest: _Guest) -> None:
        while True:
            guest.wake.acquire()
            job, guest.job = guest.job, None
            assert job is not None
            try:
                job.result = job.fn()
            except BaseException as exc:  # handed to the caller
                job.error = exc
            with self._lock:
                if job.abandoned:
                    self._stuck -= 1
                    job.result = job.error = None
                job.done.release()
                self._idle.append(guest)

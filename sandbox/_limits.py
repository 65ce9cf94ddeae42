"""Per-worker admission: `max_concurrent` guests at once (and their memory_mb within a
budget), a short queue, then 429."""

from __future__ import annotations

import math
import threading

from store import errors


class ConcurrencyGate:
    """Slots for running guests; a bounded, time-limited queue in front of them.

    A caller takes a slot at once when one is free; otherwise it waits in the
    queue (at most `queue_size` callers, at most `queue_timeout` seconds);
    a full queue or a wait that times out raises `LimitExceeded` — never a
    hang.

    NOTE(security): with `memory_budget_mb`, the running guests' `memory_mb` must also
    fit in it (a guest alone always runs, whatever it asks). Without it, a worker ran
    `max_concurrent` guests of up to MAX_MEMORY_MB each (10 × 4 GB), more than the
    machine has: the kernel's OOM killer then ends the worker and every call in it.
    """

    def __init__(
        self,
        max_concurrent: int,
        queue_size: int,
        queue_timeout: float,
        memory_budget_mb: int = 0,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.queue_size = queue_size
        self.queue_timeout = queue_timeout
        self.memory_budget_mb = memory_budget_mb  # 0: no bound
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._waiting = 0
        self._memory_mb = 0

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def memory_mb(self) -> int:
        """The memory_mb of the guests running now, in all."""
        return self._memory_mb

    def _busy(self, why: str) -> errors.LimitExceeded:
        return errors.LimitExceeded(
            f"worker busy: {why}", retry_after=max(1, math.ceil(self.queue_timeout))
        )

    def _fits(self, memory_mb: int) -> bool:
        if self._active >= self.max_concurrent:
            return False
        budget = self.memory_budget_mb
        return not budget or not self._active or self._memory_mb + memory_mb <= budget

    def acquire(self, memory_mb: int = 0) -> None:
        with self._cond:
            if self._fits(memory_mb):
                self._take(memory_mb)
                return
            if self._waiting >= self.queue_size:
                raise self._busy(self._state())
            self._waiting += 1
            try:
                free = self._cond.wait_for(lambda: self._fits(memory_mb), self.queue_timeout)
            finally:
                self._waiting -= 1
            if not free:
                raise self._busy(f"no slot within {self.queue_timeout:g} s ({self._state()})")
            self._take(memory_mb)

    def _take(self, memory_mb: int) -> None:
        self._active += 1
        self._memory_mb += memory_mb

    def _state(self) -> str:
        state = f"{self._active} running and {self._waiting} queued"
        if self.memory_budget_mb:
            state += f", {self._memory_mb} of {self.memory_budget_mb} MB of guest memory held"
        return state

    def release(self, memory_mb: int = 0) -> None:
        with self._cond:
            self._active -= 1
            self._memory_mb -= memory_mb
            if self.memory_budget_mb:
                self._cond.notify_all()  # the one that fits may not be the first waiter
            else:
                self._cond.notify()

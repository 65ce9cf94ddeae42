"""Per-worker admission: `max_concurrent` guests at once, a short queue, then 429."""

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
    """

    def __init__(self, max_concurrent: int, queue_size: int, queue_timeout: float) -> None:
        self.max_concurrent = max_concurrent
        self.queue_size = queue_size
        self.queue_timeout = queue_timeout
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._waiting = 0

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return self._waiting

    def _busy(self, why: str) -> errors.LimitExceeded:
        return errors.LimitExceeded(
            f"worker busy: {why}", retry_after=max(1, math.ceil(self.queue_timeout))
        )

    def acquire(self) -> None:
        with self._cond:
            if self._active < self.max_concurrent:
                self._active += 1
                return
            if self._waiting >= self.queue_size:
                raise self._busy(f"{self._active} running and {self._waiting} queued")
            self._waiting += 1
            try:
                free = self._cond.wait_for(
                    lambda: self._active < self.max_concurrent, self.queue_timeout
                )
            finally:
                self._waiting -= 1
            if not free:
                raise self._busy(f"no slot within {self.queue_timeout:g} s")
            self._active += 1

    def release(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify()

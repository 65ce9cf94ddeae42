"""Per-worker admission: `max_concurrent` guests at once (and their memory_mb within a
budget), a short queue, then 429."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from store import errors


@dataclass(eq=False)
class _Waiter:
    owner: str  # the function it is for
    memory_mb: int
    granted: bool = False  # a slot was taken for it
    displaced: bool = False  # it gave its place to a caller of a function holding fewer


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

    NOTE(security): one function's flood does not starve the others. Calls are counted
    per `owner` (a function): a freed slot goes to the waiter whose function holds the
    fewest (then the oldest), and a caller finding the queue full takes the place of the
    newest waiter of a function holding more slots than its own (that one gets its 429
    now). Before, 40 slow calls of one function left every other function 429 for as
    long as they came. One function alone is served as before: in order, no one displaced.
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
        self._memory_mb = 0
        self._held: dict[str, int] = {}  # owner → slots it holds
        self._queue: list[_Waiter] = []

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._queue)

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

    def acquire(self, memory_mb: int = 0, owner: str = "") -> None:
        with self._cond:
            if not self._queue and self._fits(memory_mb):
                self._take(owner, memory_mb)
                return
            if len(self._queue) >= self.queue_size and not self._displace_for(owner):
                raise self._busy(self._state())
            waiter = _Waiter(owner, memory_mb)
            self._queue.append(waiter)
            try:
                self._cond.wait_for(lambda: waiter.granted or waiter.displaced, self.queue_timeout)
            finally:
                if not waiter.granted and not waiter.displaced:
                    self._queue.remove(waiter)
            if waiter.granted:
                return
            if waiter.displaced:
                raise self._busy(f"its place went to another function's caller ({self._state()})")
            raise self._busy(f"no slot within {self.queue_timeout:g} s ({self._state()})")

    def _displace_for(self, owner: str) -> bool:
        """Make room in a full queue for a caller of `owner`, if a function holding more
        slots than `owner` has a waiter (its newest loses its place)."""
        if not self._queue:
            return False
        held = self._held.get
        newest_of_most = max(reversed(self._queue), key=lambda w: held(w.owner, 0))
        if held(newest_of_most.owner, 0) <= held(owner, 0):
            return False
        self._queue.remove(newest_of_most)
        newest_of_most.displaced = True
        self._cond.notify_all()
        return True

    def _take(self, owner: str, memory_mb: int) -> None:
        self._active += 1
        self._memory_mb += memory_mb
        self._held[owner] = self._held.get(owner, 0) + 1

    def _state(self) -> str:
        state = f"{self._active} running and {len(self._queue)} queued"
        if self.memory_budget_mb:
            state += f", {self._memory_mb} of {self.memory_budget_mb} MB of guest memory held"
        return state

    def release(self, memory_mb: int = 0, owner: str = "") -> None:
        with self._cond:
            self._active -= 1
            self._memory_mb -= memory_mb
            left = self._held[owner] - 1
            if left:
                self._held[owner] = left
            else:
                del self._held[owner]
            granted = False
            while self._queue:
                held = self._held.get
                ready = [w for w in self._queue if self._fits(w.memory_mb)]
                if not ready:
                    break
                chosen = min(ready, key=lambda w: held(w.owner, 0))  # the oldest of ties
                self._queue.remove(chosen)
                self._take(chosen.owner, chosen.memory_mb)
                chosen.granted = granted = True
            if granted:
                self._cond.notify_all()

"""Pre-warmed instances: fresh, never-called component instances per deployment in use,
made on a background thread so the request path only calls the handler (a shared
language runtime's instance has the function's code loaded too, by the runtime's
`load`; a deployment whose `load` fails is not pre-warmed again for `idle_sec`).

Each one serves exactly one call and is then discarded, like any fresh
instance: pre-warming moves instantiation off the request path (latency), it
does not save CPU. A deployment is "in use" while called within `idle_sec`;
after that its stock is closed (idle pools shrink). The stock is bounded per
deployment and in all, and its instances hold pool slots (counted in
`SandboxConfig.pool_slots`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ._component import HandlerInstance, PreloadFailed

log = logging.getLogger("nimbus.sandbox")

Maker = Callable[[], HandlerInstance]

# Used instances waiting for the background thread to close them; a call that
# finds this many already waiting closes its own.
MAX_PENDING_CLOSES = 2


class WarmStock:
    def __init__(
        self,
        per_deployment: int,
        limit: int,
        idle_sec: float,
        slots: int,
        slots_taken: Callable[[], int],
    ) -> None:
        self.per_deployment = per_deployment
        self.limit = limit
        self.idle_sec = idle_sec
        # NOTE(sandbox): pre-warming never takes the pool's last free slot from a
        # caller: it only fills while running, stuck and idle instances leave room.
        self._slots = slots
        self._slots_taken = slots_taken
        self._cond = threading.Condition(threading.Lock())
        self._stock: OrderedDict[Hashable, list[HandlerInstance]] = OrderedDict()
        self._wanted: dict[Hashable, tuple[Maker, float]] = {}  # maker, last call (monotonic)
        self._discarded: list[HandlerInstance] = []
        self._failed: dict[Hashable, float] = {}  # whose `load` failed, when (monotonic)
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def count(self) -> int:
        with self._cond:
            return self._total()

    def _total(self) -> int:
        return sum(len(insts) for insts in self._stock.values())

    def take(self, key: Hashable, make: Maker) -> HandlerInstance | None:
        """A pre-warmed instance of this deployment, if one is ready; asks for more."""
        if self.per_deployment <= 0 or self.limit <= 0:
            return None
        with self._cond:
            now = time.monotonic()
            if now - self._failed.get(key, -self.idle_sec) < self.idle_sec:
                return None  # its code failed to load ahead of a call: not again for a while
            self._failed.pop(key, None)
            self._wanted[key] = (make, now)
            stock = self._stock.get(key)
            inst = stock.pop() if stock else None
            self._start()
            # PERF(sandbox): with an instance taken, the refill waits for its call to
            # end (`discard` or `wake`) rather than compete with it for the GIL.
            if inst is None:
                self._cond.notify()
        return inst

    def wake(self) -> None:
        """A call that took an instance ended without handing it back: refill now."""
        with self._cond:
            self._cond.notify()

    def discard(self, inst: HandlerInstance) -> None:
        """Close a used instance on the background thread.

        PERF(sandbox): deleting a store resets its pool slot (up to the keep-resident
        bytes rewritten, ~1.5 ms for Python): done here, the caller has its answer first.
        """
        with self._cond:
            # PERF(sandbox): under load the background thread falls behind (it waits
            # for the GIL like every other thread): unbounded, used instances held
            # the whole pool (every slot touched, 429s in-process with 4 callers),
            # so a full backlog makes the caller close its own.
            inline = self._closed or len(self._discarded) >= MAX_PENDING_CLOSES
            if not inline:
                self._discarded.append(inst)
                self._start()
                self._cond.notify()
        if inline:
            inst.close()

    def drop_all(self) -> int:
        """Close every pre-warmed instance and every used one still to close (freeing
        pool slots); how many."""
        with self._cond:
            dropped = [inst for insts in self._stock.values() for inst in insts]
            dropped += self._discarded
            self._stock.clear()
            self._discarded = []
        for inst in dropped:
            inst.close()
        return len(dropped)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wanted.clear()
            self._cond.notify()
        self.drop_all()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._refill, name="nimbus-prewarm",
                                            daemon=True)  # fmt: skip
            self._thread.start()

    def _next(self) -> tuple[Hashable, Maker] | None:
        """Under the lock: forget idle deployments; the next one short of its stock."""
        now = time.monotonic()
        for key, failed in list(self._failed.items()):
            if now - failed > self.idle_sec:
                del self._failed[key]
        for key, (_, used) in list(self._wanted.items()):
            if now - used > self.idle_sec:
                del self._wanted[key]
                for inst in self._stock.pop(key, []):
                    inst.close()
        total = self._total()
        held = total + len(self._discarded) + self._slots_taken()
        if total >= self.limit or held + 1 >= self._slots:
            return None
        # The most recently called deployment first.
        for key, (make, _) in sorted(self._wanted.items(), key=lambda kv: -kv[1][1]):
            if len(self._stock.get(key, ())) < self.per_deployment:
                return key, make
        return None

    def _refill(self) -> None:
        while True:
            with self._cond:
                discarded, self._discarded = self._discarded, []
                found = None if discarded else self._next()
                while found is None and not discarded and not self._closed:
                    self._cond.wait(self.idle_sec / 2)
                    discarded, self._discarded = self._discarded, []
                    found = None if discarded else self._next()
                if self._closed:
                    return
            for used in discarded:
                used.close()
            if found is None:
                continue
            key, make = found
            try:
                inst = make()
            except Exception as exc:  # e.g. a full pool: the request path makes its own
                log.debug("pre-warming failed: %s", exc)
                with self._cond:
                    self._wanted.pop(key, None)
                    if isinstance(exc, PreloadFailed):  # its calls fail too: stop trying
                        self._failed[key] = time.monotonic()
                continue
            with self._cond:
                if key in self._wanted and not self._closed:
                    self._stock.setdefault(key, []).append(inst)
                    self._stock.move_to_end(key)
                    inst = None
            if inst is not None:
                inst.close()

"""One background loop: daemon threads that do a piece of work, wait, and do it again
until `stop()`; `wake()` cuts a wait short (work was just accepted here).

The build queue, the async dispatcher, the schedule ticker, the periodic-job dispatcher
and the outcome flusher each used to hold their own threads, stop and wake events and
the same while/try/log/wait loop. A step returns how long to wait before the next one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("nimbus.background")


class BackgroundLoop:
    """`step()` → seconds to wait before the next step (0: go again at once).

    A step that raises is logged and followed by `error_wait_sec`. `first_wait_sec`
    delays the first step. Steps may check `stopping` between pieces of their work.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], float],
        *,
        threads: int = 1,
        first_wait_sec: float = 0.0,
        error_wait_sec: float = 1.0,
    ) -> None:
        self.name = name
        self.step = step
        self.threads = threads
        self.first_wait_sec = first_wait_sec
        self.error_wait_sec = error_wait_sec
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.threads):
            name = self.name if self.threads == 1 else f"{self.name}-{i}"
            thread = threading.Thread(target=self._run, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Start no new step; wait up to `timeout` for each thread's current one."""
        self.stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        pause = self.first_wait_sec
        while True:
            if pause > 0:
                self._wake.wait(pause)
                self._wake.clear()  # NOTE: before the step, so a wake during it is kept
            if self.stopping.is_set():
                return
            try:
                pause = self.step()
            except Exception:
                log.exception("%s failed", self.name)
                pause = self.error_wait_sec

"""One background loop: daemon threads that do a piece of work, wait, and do it again
until `stop()`; `wake()` cuts a wait short (work was just accepted here).

The build queue, the async dispatcher, the schedule ticker, the periodic-job dispatcher
and the outcome flusher each used to hold their own threads, stop and wake events and
the same while/try/log/wait loop. A step returns how long to wait before the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from store import errors

log = logging.getLogger("nimbus.background")


class StepFailures:
    """How one background task's failures reach the log (call `failed` in its `except`).

    A store that does not answer is expected and heals by itself: one WARNING when the
    task first meets it, one INFO when a step succeeds again, nothing in between (a 20 s
    outage of an S3 store made 552 tracebacks, 14,773 log lines, from one 2-worker
    server). Anything else is a bug: its traceback, every time.
    """

    def __init__(self, what: str, logger: logging.Logger = log) -> None:
        self.what = what
        self.log = logger
        self._lock = threading.Lock()
        self._since: float | None = None  # monotonic: the first failed step of an outage
        self._failed = 0

    def failed(self, exc: BaseException) -> None:
        if not isinstance(exc, errors.Unavailable):
            self.log.exception("%s failed", self.what)
            return
        with self._lock:
            first = self._since is None
            if first:
                self._since, self._failed = time.monotonic(), 0
            self._failed += 1
        if first:
            self.log.warning("%s: %s; retrying until it answers", self.what, exc.message)

    def succeeded(self) -> None:
        if self._since is None:  # PERF: every step comes here; no lock unless recovering
            return
        with self._lock:
            if self._since is None:
                return
            lasted, failed = time.monotonic() - self._since, self._failed
            self._since = None
        self.log.info("%s: the store answers again (%d steps failed over %.0f s)",
                      self.what, failed, lasted)  # fmt: skip


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
        self._failures = StepFailures(name)

    def start(self) -> None:
        for i in range(self.threads):
            name = self.name if self.threads == 1 else f"{self.name}-{i}"
            thread = threading.Thread(target=self._run, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Start no new step; wait up to `timeout` in all for the threads' current ones
        (it was `timeout` for each in turn: four build threads busy, 20 s)."""
        self.stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

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
            except Exception as exc:
                self._failures.failed(exc)
                pause = self.error_wait_sec
            else:
                self._failures.succeeded()

"""A worker's recurring jobs, listed in one place with their intervals.

`schedule` decides when each job is due; it would run due jobs one after
another in its own thread, so here its thread only hands them to a small
executor with a thread per job: a slow job (a stats fold on S3) never delays
another (a cron tick). A job still running when it is due again is skipped
(counted in its `JobState`), never run twice at once.

A job listed with `hold=leases` runs at most once per interval across all
workers sharing the store, not once per worker: each worker that finds it
due first takes the store hold of the job's name (`store.Leases.hold_job`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import schedule

from store import Leases

from ..background import BackgroundLoop, StepFailures

log = logging.getLogger("nimbus.jobs")


@dataclass
class JobState:
    """What one job has done in this worker (for tests, logs and metrics)."""

    name: str
    interval_sec: float
    runs: int = 0  # started
    failures: int = 0  # raised
    skipped: int = 0  # due while still running
    running: bool = False
    last_duration_sec: float | None = None


class PeriodicJobs:
    """`every(seconds, job, name=…)` for each job, then `start()`; `stop()` at the end."""

    def __init__(self, *, tick_sec: float = 0.5, name: str = "periodic") -> None:
        self.tick_sec = tick_sec  # the longest the dispatcher sleeps between looks
        self.name = name
        self._scheduler = schedule.Scheduler()
        self._states: dict[str, JobState] = {}
        self._failures: dict[str, StepFailures] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._loop = BackgroundLoop(name, self._dispatch, error_wait_sec=tick_sec)

    def every(
        self,
        seconds: float,
        job: Callable[[], object],
        *,
        name: str,
        jitter: bool = False,
        hold: Leases | None = None,
    ) -> None:
        """Run `job` every `seconds` (first after one interval).

        `jitter`: each interval is drawn from [seconds/2, seconds] (whole
        seconds; intervals ≥ 2 s), so workers started together do not all
        look at the same moment. `hold`: run only if this worker takes the
        store hold of the job for `seconds` — once per interval store-wide.
        """
        if name in self._states:
            raise ValueError(f"a periodic job named {name!r} is already listed")
        if seconds <= 0:
            raise ValueError(f"{name}: the interval must be positive, not {seconds}")
        if self._pool is not None:
            raise RuntimeError("list every job before start()")
        if jitter and seconds >= 2:
            when = self._scheduler.every(max(1, int(seconds / 2))).to(int(seconds)).seconds
        else:
            when = self._scheduler.every(seconds).seconds
        if hold is not None:
            job = _held(hold, name, seconds, job)
        when.do(self._submit, name, job)
        self._states[name] = JobState(name, seconds)
        self._failures[name] = StepFailures(f"periodic job {name}", log)

    def state(self, name: str) -> JobState:
        with self._lock:
            return JobState(**vars(self._states[name]))

    @property
    def names(self) -> list[str]:
        return list(self._states)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        # A thread per job: with skip-if-running no job ever waits for a thread.
        self._pool = ThreadPoolExecutor(
            max(1, len(self._states)), thread_name_prefix=f"{self.name}-job"
        )
        self._loop.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Start nothing new; wait up to `timeout` (in all) for running jobs, then leave
        them."""
        deadline = time.monotonic() + timeout
        self._loop.stop(timeout)
        if self._pool is not None:
            while self._any_running() and time.monotonic() < deadline:
                time.sleep(0.02)
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._scheduler.clear()

    def _any_running(self) -> bool:
        with self._lock:
            return any(state.running for state in self._states.values())

    def _dispatch(self) -> float:
        # NOTE: a bug in scheduling (not in a job) is logged by the loop, which goes on.
        self._scheduler.run_pending()
        idle = self._scheduler.idle_seconds
        return self.tick_sec if idle is None else min(max(idle, 0.0), self.tick_sec)

    # -- one run -----------------------------------------------------------------

    def _submit(self, name: str, job: Callable[[], object]) -> None:
        with self._lock:
            state = self._states[name]
            if state.running:
                state.skipped += 1
                return
            state.running = True
            state.runs += 1
        assert self._pool is not None
        try:
            self._pool.submit(self._run, state, job)
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                state.running = False

    def _run(self, state: JobState, job: Callable[[], object]) -> None:
        started = time.monotonic()
        try:
            job()
        except Exception as exc:
            self._failures[state.name].failed(exc)
            with self._lock:
                state.failures += 1
        else:
            self._failures[state.name].succeeded()
        finally:
            with self._lock:
                state.running = False
                state.last_duration_sec = time.monotonic() - started


def _held(leases: Leases, name: str, seconds: float, job: Callable[[], object]):
    def run_if_held() -> object:
        return job() if leases.hold_job(name, seconds) else None

    return run_if_held

"""PeriodicJobs: a worker's recurring jobs, each on its own thread when due."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from gateway.jobs.periodic import PeriodicJobs
from store import errors


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def jobs():
    periodic = PeriodicJobs(tick_sec=0.05)
    yield periodic
    periodic.stop(timeout=1)


def test_a_blocked_job_delays_nothing_else(jobs: PeriodicJobs) -> None:
    release = threading.Event()
    ticks: list[float] = []
    jobs.every(0.05, lambda: release.wait(30), name="stats-fold")  # stuck on a slow store
    jobs.every(0.05, lambda: ticks.append(time.monotonic()), name="cron-tick")
    jobs.start()
    assert _wait_for(lambda: jobs.state("stats-fold").running)
    seen = len(ticks)
    time.sleep(1.0)
    try:
        assert len(ticks) - seen >= 8  # ~20 at 0.05 s; one at most if it waited behind the fold
        gaps = [b - a for a, b in zip(ticks[seen:], ticks[seen + 1 :], strict=False)]
        assert max(gaps) < 0.5
        fold = jobs.state("stats-fold")
        assert (fold.runs, fold.running) == (1, True)  # never doubled while stuck
        assert fold.skipped >= 5
    finally:
        release.set()
    assert _wait_for(lambda: jobs.state("stats-fold").runs >= 2)  # free again: it runs again


def test_a_job_never_runs_twice_at_once(jobs: PeriodicJobs) -> None:
    active, most = [0], [0]
    lock = threading.Lock()

    def slow() -> None:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1

    jobs.every(0.02, slow, name="slow")
    jobs.start()
    assert _wait_for(lambda: jobs.state("slow").runs >= 3)
    assert most[0] == 1
    assert jobs.state("slow").skipped > 0


def test_a_failing_job_is_counted_and_keeps_its_schedule(jobs: PeriodicJobs) -> None:
    def broken() -> None:
        raise RuntimeError("store down")

    jobs.every(0.05, broken, name="sweep")
    jobs.start()
    assert _wait_for(lambda: jobs.state("sweep").failures >= 3)
    assert jobs.state("sweep").runs >= 3


def test_stop_is_prompt_and_final(jobs: PeriodicJobs) -> None:
    release = threading.Event()
    counts = [0]
    jobs.every(0.05, lambda: counts.__setitem__(0, counts[0] + 1), name="count")
    jobs.every(0.05, lambda: release.wait(30), name="stuck")
    jobs.start()
    assert _wait_for(lambda: counts[0] >= 2 and jobs.state("stuck").running)
    started = time.monotonic()
    jobs.stop(timeout=0.3)  # leaves the stuck job behind instead of hanging
    assert time.monotonic() - started < 2
    after = counts[0]
    time.sleep(0.3)
    assert counts[0] == after
    release.set()


def test_the_first_run_waits_one_interval(jobs: PeriodicJobs) -> None:
    ran = threading.Event()
    jobs.every(0.4, ran.set, name="later")
    jobs.start()
    assert not ran.wait(0.25)
    assert ran.wait(2)


def test_listing_mistakes_are_refused(jobs: PeriodicJobs) -> None:
    jobs.every(60, lambda: None, name="sweep", jitter=True)
    with pytest.raises(ValueError):
        jobs.every(60, lambda: None, name="sweep")
    with pytest.raises(ValueError):
        jobs.every(0, lambda: None, name="never")
    jobs.start()
    with pytest.raises(RuntimeError):
        jobs.every(1, lambda: None, name="late")
    assert jobs.names == ["sweep"]
    assert jobs.state("sweep").interval_sec == 60


def test_stop_without_start() -> None:
    PeriodicJobs().stop()


def test_a_store_outage_in_a_job_is_logged_once_and_its_end_once(jobs, caplog) -> None:
    outage = threading.Event()
    outage.set()

    def sweep() -> None:
        if outage.is_set():
            raise errors.Unavailable("the local store cannot serve logs/: disk full")

    jobs.every(0.05, sweep, name="log-sweep")
    with caplog.at_level(logging.INFO, logger="nimbus.jobs"):
        jobs.start()
        assert _wait_for(lambda: jobs.state("log-sweep").failures >= 4)
        outage.clear()
        runs = jobs.state("log-sweep").runs
        assert _wait_for(lambda: jobs.state("log-sweep").runs >= runs + 2)
    said = [(r.levelname, r.getMessage().split(";")[0], r.exc_info) for r in caplog.records]
    assert said[0] == ("WARNING", "periodic job log-sweep: the local store cannot serve logs/: "
                                  "disk full", None)  # fmt: skip
    assert [s[0] for s in said] == ["WARNING", "INFO"], said
    assert "the store answers again" in said[1][1]

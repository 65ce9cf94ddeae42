"""The background loop every runner's thread is made of: steps, waits, wakes, errors, stop."""

from __future__ import annotations

import logging
import threading
import time

from gateway.background import BackgroundLoop
from store import errors


def _until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_a_wake_cuts_the_wait_short_and_stop_ends_every_thread():
    steps: list[float] = []
    loop = BackgroundLoop("waker", lambda: steps.append(time.monotonic()) or 30.0, threads=2)
    loop.start()
    assert _until(lambda: len(steps) == 2)  # each thread steps at once, then waits 30 s
    started = time.monotonic()
    loop.wake()
    assert _until(lambda: len(steps) >= 3)
    assert time.monotonic() - started < 2
    loop.stop(timeout=2)
    assert not [t for t in threading.enumerate() if t.name.startswith("waker")]


def test_a_failing_step_is_logged_and_the_loop_goes_on(caplog):
    calls = []

    def step() -> float:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return 30.0

    loop = BackgroundLoop("flaky", step, error_wait_sec=0.05)
    loop.start()
    try:
        assert _until(lambda: len(calls) == 2)
    finally:
        loop.stop(timeout=2)
    assert "flaky failed" in caplog.text and "boom" in caplog.text


def test_the_first_step_waits_when_asked_and_a_stopped_loop_steps_no_more():
    calls = []
    loop = BackgroundLoop("late", lambda: calls.append(1) or 0.01, first_wait_sec=0.5)
    loop.start()
    time.sleep(0.2)
    assert calls == []
    assert _until(lambda: len(calls) >= 3)
    loop.stop(timeout=2)
    after = len(calls)
    time.sleep(0.1)
    assert len(calls) == after


def test_a_store_outage_is_one_warning_and_one_recovery_line_not_a_traceback_per_step(caplog):
    """A 20 s S3 outage made 552 tracebacks (14,773 log lines) from one 2-worker server:
    every background step logged its Unavailable with a traceback, at ERROR."""
    calls = []

    def step() -> float:
        calls.append(1)
        if len(calls) <= 5:
            raise errors.Unavailable("S3 unreachable for queue/builds/: Read timeout")
        return 30.0

    loop = BackgroundLoop("build", step, error_wait_sec=0.01)
    with caplog.at_level(logging.INFO, logger="nimbus.background"):
        loop.start()
        assert _until(lambda: len(calls) == 6)
        loop.stop(timeout=2)
    lines = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    assert lines == [
        ("WARNING", "build: S3 unreachable for queue/builds/: Read timeout; retrying until it "
                    "answers", None),
        ("INFO", "build: the store answers again (5 steps failed over 0 s)", None),
    ]  # fmt: skip


def test_a_bug_in_a_step_keeps_its_traceback_every_time(caplog):
    calls = []

    def step() -> float:
        calls.append(1)
        raise KeyError("bug")

    loop = BackgroundLoop("buggy", step, error_wait_sec=0.01)
    with caplog.at_level(logging.INFO, logger="nimbus.background"):
        loop.start()
        assert _until(lambda: len(calls) >= 3)
        loop.stop(timeout=2)
    assert len(caplog.records) >= 3
    assert all(r.levelname == "ERROR" and r.exc_info for r in caplog.records)


def test_stop_waits_its_timeout_in_all_not_for_each_thread_in_turn():
    """A stopping worker has GRACEFUL_TIMEOUT_SEC in all: four build threads each busy
    with a long build made `stop(5)` wait 20 s, past the master's SIGKILL."""
    release = threading.Event()
    loop = BackgroundLoop("busy", lambda: release.wait(30) and 30.0, threads=4)
    loop.start()
    time.sleep(0.1)  # every thread is in its step
    started = time.monotonic()
    loop.stop(timeout=0.5)
    took = time.monotonic() - started
    release.set()
    assert 0.4 < took < 1.0, took  # was 2.0: 0.5 s for each of the 4

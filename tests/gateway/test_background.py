"""The background loop every runner's thread is made of: steps, waits, wakes, errors, stop."""

from __future__ import annotations

import threading
import time

from gateway.background import BackgroundLoop


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

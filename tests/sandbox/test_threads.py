"""Guarded guest threads: results and errors come back, a call past its wait is
abandoned and counted stuck until it returns, and threads are reused."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sandbox import _lanes
from sandbox._threads import Abandoned, GuestThreads
from store import errors


def test_results_and_errors_come_back_on_a_reused_thread():
    threads = GuestThreads(stuck_limit=2)
    names = {threads.run(lambda: threading.current_thread().name, 5) for _ in range(50)}
    assert len(names) == 1 and names != {threading.current_thread().name}
    with pytest.raises(ZeroDivisionError):
        threads.run(lambda: 1 / 0, 5)
    assert threads.run(lambda: 42, 5) == 42


def test_an_abandoned_call_is_stuck_until_it_returns_and_bounds_new_calls():
    replaced: list[int] = []
    threads = GuestThreads(stuck_limit=1, on_replace=replaced.append)
    release = threading.Event()
    t0 = time.monotonic()
    with pytest.raises(Abandoned):
        threads.run(lambda: release.wait(10) and "late", 0.2)
    assert time.monotonic() - t0 < 2
    assert threads.stuck == 1 and replaced == [1]
    with pytest.raises(errors.LimitExceeded):
        threads.run(lambda: "refused", 5)
    release.set()  # the guest returns: its result is dropped, the thread serves again
    deadline = time.monotonic() + 5
    while threads.stuck and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threads.stuck == 0
    assert threads.run(lambda: "again", 5) == "again"


def test_concurrent_callers_each_get_their_own_answer():
    threads = GuestThreads(stuck_limit=4)
    got: dict[int, list[int]] = {}

    def caller(n: int) -> None:
        got[n] = [threads.run(lambda i=i: n * 1000 + i, 5) for i in range(200)]

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert got == {n: [n * 1000 + i for i in range(200)] for n in range(8)}


def test_a_native_lane_call_past_its_wait_is_stuck_until_it_returns():
    threads = GuestThreads(stuck_limit=1, on_replace=(replaced := []).append)
    if threads.lanes is None:
        pytest.skip("the native lane helper is not built (scripts/install.sh)")
    # Any C function of up to six word arguments will do: libc's usleep stands in for
    # a guest call blocked in a host call.
    usleep = ctypes.cast(ctypes.CDLL(None).usleep, ctypes.c_void_p).value
    late: list[int | None] = []
    assert threads.run_native(usleep, (1000, 0, 0, 0, 0, 0), 5, late.append) in (0, None)
    t0 = time.monotonic()
    with pytest.raises(Abandoned):
        threads.run_native(usleep, (1_000_000, 0, 0, 0, 0, 0), 0.2, late.append)
    assert time.monotonic() - t0 < 0.9
    assert threads.stuck == 1 and replaced == [1] and late == []
    with pytest.raises(errors.LimitExceeded):
        threads.check_capacity()
    deadline = time.monotonic() + 5
    while threads.stuck and time.monotonic() < deadline:
        time.sleep(0.02)
    assert threads.stuck == 0 and late in ([0], [None])  # its late return was handed over
    assert threads.run_native(usleep, (1000, 0, 0, 0, 0, 0), 5, late.append) in (0, None)


def test_a_helper_built_before_module_c_still_gives_lanes(tmp_path):
    """A worktree's older liblane.so (lane.c only) keeps its native lanes; command
    modules then run through Python (`_lanes.ModuleHelpers` is absent)."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    lane_c = Path(_lanes.__file__).with_name("_native") / "lane.c"
    old = tmp_path / "liblane.so"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-pthread", "-o", old, lane_c], check=True)
    lib = _lanes.Library(old)
    assert lib.modules is None
    assert lib.new()  # a lane

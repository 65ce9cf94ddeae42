"""max_concurrency slots are shared by every process of a server, and a dead
process's slots come back at once (the kernel drops its record locks)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from gateway.jobs.asyncq import _each_function_in_turn
from gateway.services.concurrency import FunctionConcurrency
from store.invocations import QueueEntry

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gateway.services.concurrency import FunctionConcurrency
    slots = FunctionConcurrency(Path(sys.argv[1]))
    held = [slots.acquire("fn_busy", 2) for _ in range(int(sys.argv[2]))]
    print("held" if all(held) else "refused", flush=True)
    time.sleep(60)
""")


def _holder(directory, count: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(directory), str(count)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_slots_are_counted_across_processes_and_freed_when_one_dies(tmp_path):
    here = FunctionConcurrency(tmp_path)
    other = _holder(tmp_path, 2)  # another worker runs two: the cap of 2 is reached
    try:
        assert here.acquire("fn_busy", 2) is None
        assert here.running("fn_busy", 2) == 2
        assert here.acquire("fn_other", 2) is not None  # other functions are not affected
        other.kill()  # kill -9: no release ever runs
        other.wait()
        deadline = time.monotonic() + 5
        while (slot := here.acquire("fn_busy", 2)) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert slot is not None
    finally:
        other.kill()
        other.wait()


def test_threads_of_one_process_take_distinct_slots(tmp_path):
    slots = FunctionConcurrency(tmp_path)
    first, second = slots.acquire("fn_a", 2), slots.acquire("fn_a", 2)
    assert first and second and first.offset != second.offset
    assert slots.acquire("fn_a", 2) is None
    slots.release(first)
    assert slots.acquire("fn_a", 2) == first
    assert slots.acquire("fn_a", 0) is None  # 0 throttles every call


def test_the_dispatcher_takes_each_functions_oldest_first():
    queue = [QueueEntry(f"m{i}", f"inv_{i}", fn) for i, fn in enumerate("aaaabac")]
    order = [(e.function_id, e.invocation_id) for e in _each_function_in_turn(queue)]
    assert order == [("a", "inv_0"), ("b", "inv_4"), ("c", "inv_6"), ("a", "inv_1"),
                     ("a", "inv_2"), ("a", "inv_3"), ("a", "inv_5")]  # fmt: skip

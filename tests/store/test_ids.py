"""Invocation and request ids: unique within a process and across forked workers."""

from __future__ import annotations

import os
import time

from store.records import id_time, sequential_id


def test_a_forked_worker_never_repeats_its_parents_ids():
    parent = [sequential_id("inv_") for _ in range(3)]
    assert len(set(parent)) == 3
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a gunicorn worker forked after the master made ids
        try:
            os.write(write, " ".join(sequential_id("inv_") for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    assert len(child) == 3
    assert not set(child) & {*parent, sequential_id("inv_")}
    assert child[0][:12] != parent[0][:12]  # a tag of its own, not the parent's counter


def test_a_timed_id_says_when_it_was_made():
    assert abs(id_time(sequential_id.timed("inv_")) - time.time()) < 2
    assert id_time(sequential_id.timed("inv_", at=1_800_000_000.7)) == 1_800_000_000
    assert id_time("inv_abcdefghijklmnop-20300102030405") == 1_893_553_445  # a schedule's tick
    for untimed in (sequential_id("inv_"), "inv_x", "inv_abcdefghijklmnop-20301302030405"):
        assert id_time(untimed) is None

"""Invocation and request ids: unique within a process and across forked workers."""

from __future__ import annotations

import os

from store.records import sequential_id


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

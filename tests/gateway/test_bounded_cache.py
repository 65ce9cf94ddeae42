"""The per-worker caches of deployments, versions and workflow machines under request threads."""

from __future__ import annotations

import sys
import threading

from gateway.services._bounded import BoundedCache


def test_keeps_at_most_its_size_oldest_out_first():
    cache: BoundedCache[int, str] = BoundedCache(3)
    for key in range(5):
        cache.put(key, str(key))
    assert len(cache) == 3
    assert [cache.get(key) for key in range(5)] == [None, None, "2", "3", "4"]
    assert cache.put(4, "again") == "again" and len(cache) == 3 and cache.get(2) == "2"


def test_threads_adding_past_the_bound_never_fail():
    # Evicting with next(iter(d)) while another thread adds raised "dictionary changed
    # size during iteration", and two threads evicting one key made one a KeyError: a
    # request thread's 500. Switching threads every microsecond makes either show.
    cache: BoundedCache[tuple[int, int], int] = BoundedCache(8)
    failures: list[BaseException] = []

    def add(thread: int) -> None:
        try:
            for n in range(20_000):
                key = (thread, n)
                if cache.get(key) is None:
                    cache.put(key, n)
        except BaseException as exc:  # the test reports any failure
            failures.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=add, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
    assert len(cache) <= 8

"""Queue pollers back off while their queue stays empty, and still see others' work."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from gateway.jobs.builds import BuildQueue
from gateway.jobs.polling import IdlePolling
from store import Leases, LocalStore
from store.functions import FunctionRepo, build_marker_key
from store.records import Function


class CountingStore(LocalStore):
    """A real local store that counts the LIST requests made of each prefix."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lists: list[tuple[float, str]] = []

    def list(self, prefix: str) -> Iterator[str]:
        self.lists.append((time.monotonic(), prefix))
        return super().list(prefix)

    def looks(self, prefix: str, since: float = 0.0) -> int:
        return sum(1 for at, p in self.lists if p == prefix and at >= since)


def test_the_wait_doubles_while_empty_up_to_the_ceiling_and_drops_back_with_work() -> None:
    polling = IdlePolling(0.5, 5.0)
    assert [polling.after(empty=True) for _ in range(6)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert polling.after(empty=False) == 0.5
    assert polling.after(empty=True) == 1.0
    assert IdlePolling(1.0, 0.2).after(empty=True) == 1.0  # a ceiling below the base: none


def _queue(store: CountingStore, tmp_path: Path, idle_max: float | None) -> BuildQueue:
    return BuildQueue(FunctionRepo(store), Leases(store), workdir=tmp_path / "work",
                      concurrency=1, lease_sec=5, poll_sec=0.05, max_attempts=3,
                      idle_poll_max_sec=idle_max)  # fmt: skip


def test_an_idle_build_queue_lists_less_and_still_sees_a_marker_another_worker_wrote(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path / "store")
    eager, patient = _queue(store, tmp_path, None), _queue(store, tmp_path, 0.4)
    for queue in (eager, patient):
        started = time.monotonic()
        queue.start()
        time.sleep(2.0)
        queue.stop()
        looks = store.looks("queue/builds/", since=started)
        if queue is eager:
            assert looks >= 25, looks  # every 0.05 s: ~40
        else:
            assert 4 <= looks <= 9, looks  # 0.1, 0.2, 0.4, then every 0.4 s: ~7
    # Another worker's marker whose version never came (its creator died): an idle
    # queue sees it within one ceiling, looks again at the base interval, drops it.
    queue = _queue(store, tmp_path, 0.4)
    queue.start()
    try:
        time.sleep(1.0)  # backed off to the ceiling
        store.put(build_marker_key("fn_gone", 1), b"")
        written = time.monotonic()
        while store.exists(build_marker_key("fn_gone", 1)):
            assert time.monotonic() < written + 3, "the idle queue never looked again"
            time.sleep(0.01)
        assert time.monotonic() - written < 0.4 + 0.05 + 0.25
    finally:
        queue.stop()


def test_a_marker_waits_a_lease_period_for_its_version_however_often_it_is_looked_at(
    tmp_path: Path,
) -> None:
    """The creator writes the marker, then the version: a slow version write (a loaded
    machine) must not lose its marker to quick successive looks (several build threads)."""
    store = CountingStore(tmp_path / "store")
    repo = FunctionRepo(store)
    repo.create_function(Function(id="fn_slowwriter0000", name="slow", runtime="wasm"))
    queue = BuildQueue(repo, Leases(store), workdir=tmp_path / "work", concurrency=3,
                       lease_sec=1.5, poll_sec=0.01, max_attempts=3)  # fmt: skip
    marker = build_marker_key("fn_slowwriter0000", 1)
    store.put(marker, b"")
    written = time.monotonic()
    queue.start()
    try:
        time.sleep(1.0)
        assert store.looks("queue/builds/", since=written) >= 50  # looked at often...
        assert store.exists(marker)  # ...and kept while its version may still come
        while store.exists(marker):  # a creator that died: dropped after the lease period
            assert time.monotonic() < written + 5, "the orphan marker was never dropped"
            time.sleep(0.02)
        assert time.monotonic() - written >= 1.5
    finally:
        queue.stop()

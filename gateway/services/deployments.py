"""Per-worker cache of what serves each function, revalidated cheaply.

PERF(nimbus): the invoke path must not read records from the store on every
call. A function record is reused for up to `max_age` seconds (the stated
staleness, ≤ 1 s), then revalidated with a HEAD (etag compare) and re-read
only if it changed. Ready versions never change, so they are cached for good.

While the store does not answer (`Unavailable`), a record the store confirmed within
`stale_if_error` seconds keeps serving, as HTTP's stale-if-error: a store outage must not
take down functions every worker already holds. Nothing can change a record meanwhile (a
change needs the store); a replica cut off from a store others still reach serves what it
last saw for that long.

A store that hangs (accepts connections, never answers) must not hold calls either: the
revalidation HEAD is the store's quick one (one short attempt, `StoreTimeouts.quick_sec`);
after it fails the whole worker skips revalidations for `retry_after` seconds; and while one
caller revalidates a record, the others serve it as it is (within the grace) rather than
queue behind it. So during an outage at most one call per function per `retry_after` waits,
and for at most the quick timeout.

NOTE(nimbus): read-your-writes on one worker. The staleness is for records other workers
wrote: the repo tells this cache of every function record this worker writes (an update, a
status switch, a deploy, a rollback, an alias, a finished build), and the entry is dropped,
so the worker's next call reads what it wrote. A read already under way when the write lands
may bring the old record: it is kept only as revalidate-before-use.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from store import errors
from store.functions import FunctionRepo
from store.records import BuildStatus, Function, Version

from ._bounded import BoundedCache


@dataclass
class _Entry:
    function: Function
    etag: str
    checked: float  # last revalidation (monotonic), successful or not
    confirmed: float  # last time the store answered for this record (monotonic)
    revalidating: threading.Lock = field(default_factory=threading.Lock)


class DeploymentCache:
    def __init__(
        self,
        repo: FunctionRepo,
        max_age: float = 1.0,
        max_versions: int = 4096,
        stale_if_error: float = 0.0,
        retry_after: float = 2.0,
    ):
        self.repo = repo
        self.max_age = max_age
        self.stale_if_error = stale_if_error
        self.retry_after = retry_after
        self._store_down_until = 0.0  # monotonic: no revalidation before, the store failed
        self.max_versions = max_versions
        self._functions: dict[str, _Entry] = {}
        self._names: dict[str, str] = {}
        self._versions: BoundedCache[tuple[str, int], Version] = BoundedCache(max_versions)
        self._lock = threading.Lock()
        self._writes = 0  # how many records this worker wrote (see `forget`)
        repo.on_function_written(self.forget)

    def forget(self, function_id: str) -> None:
        """Drop a record this worker just wrote: its next call reads the write."""
        with self._lock:
            self._writes += 1
            self._functions.pop(function_id, None)

    def function(self, ref: str, *, fresh: bool = False) -> Function:
        """The function record, at most `max_age` old unless `fresh` asks for a revalidation."""
        function_id = ref if ref.startswith("fn_") else self._names.get(ref)
        entry = self._functions.get(function_id) if function_id else None
        now = time.monotonic()
        if entry is not None and not fresh and now - entry.checked < self.max_age:
            return entry.function
        if entry is not None:
            grace = now - entry.confirmed < self.stale_if_error
            if grace and not fresh and now < self._store_down_until:
                return entry.function
            if not entry.revalidating.acquire(blocking=False):
                if grace and not fresh:
                    return entry.function  # another caller is asking the store
                entry.revalidating.acquire()
            try:
                etag = self.repo.etag(entry.function.id, quick=True)
            except errors.Unavailable:
                self._store_down_until = time.monotonic() + self.retry_after
                entry.checked = now
                if not grace:
                    raise
                return entry.function
            finally:
                entry.revalidating.release()
            if etag == entry.etag:
                entry.checked = entry.confirmed = now
                return entry.function
        writes = self._writes
        try:
            fn, etag = self.repo.resolve(ref) if entry is None else self.repo.get(function_id)
        except errors.NotFound:
            with self._lock:
                if function_id:
                    self._functions.pop(function_id, None)
                self._names.pop(ref, None)
            if entry is not None and not ref.startswith("fn_"):
                return self.function(ref)  # the name may belong to a new function now
            raise
        with self._lock:
            # a write meanwhile may be newer than what was read: revalidate before reuse
            checked = now if writes == self._writes else float("-inf")
            self._functions[fn.id] = _Entry(fn, etag, checked, now)
            self._names[fn.name] = fn.id
        return fn

    def version(self, fn: Function, number: int) -> Version:
        key = (fn.id, number)
        cached = self._versions.get(key)
        if cached is not None:
            return cached
        version, _ = self.repo.get_version(fn.id, number)
        if version.build.status == BuildStatus.ready:
            self._versions.put(key, version)
        return version

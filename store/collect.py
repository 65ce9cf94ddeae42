"""Collecting blobs no version uses any more (mark, then sweep).

What is collected, in one round: first the artifacts the build cache knows (C,
Go, Rust modules) with their cache records; then every other blob — sources,
uploaded wasm/native artifacts, bundles and mounts of pruned versions and
deleted functions — that no version record, cache record or installed shared
runtime names and that nothing stored or reused for a grace (store/blobs.py:
the touch/claim protocol on each blob's mark). Precompiled forms go with
their blob.

A collection runs at most once per `grace_sec` store-wide (a store hold,
`gc/collect.json`). A blob is deleted only when it was unreferenced at two
collections at least `grace_sec` apart (the first records it as a candidate
in `gc/artifacts.json`),
so a build that uploaded an artifact but has not written its version yet never
loses it. A cache hit touches its record with a conditional write, and the
collector deletes a record only if it is unchanged, then the blob (claiming its
mark, as the sweep does): a build reusing an artifact and a collection deleting
it cannot both win.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable

import orjson

from . import errors
from ._base import Store
from .blobs import BlobRepo, SweepReport, sha_of
from .buildcache import BuildCacheRepo
from .leases import ARTIFACT_COLLECT, Leases

STATE_KEY = "gc/artifacts.json"
log = logging.getLogger("nimbus.collect")


def _blob_keys(value, found: set[str]) -> None:
    if isinstance(value, str):
        if value.startswith("blobs/"):
            found.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _blob_keys(item, found)
    elif isinstance(value, list):
        for item in value:
            _blob_keys(item, found)


class ArtifactCollector:
    def __init__(
        self,
        store: Store,
        *,
        grace_sec: float = 3600.0,
        pinned: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.store = store
        self.cache = BuildCacheRepo(store)
        self.grace_sec = grace_sec
        self.pinned = pinned  # blob keys never collected (the installed shared runtimes)
        self.last_sweep: SweepReport | None = None

    def live(self) -> set[str]:
        """Every blob key any version record mentions (source, artifact, bundle, mounts)."""
        found: set[str] = set()
        for key in self.store.list("versions/"):
            with contextlib.suppress(errors.NotFound, orjson.JSONDecodeError):
                _blob_keys(orjson.loads(self.store.get(key).data), found)
        return found

    def collect(self, now: float | None = None) -> int:
        """One collection if the last was at least `grace_sec` ago; returns blobs deleted."""
        now = time.time() if now is None else now
        if not Leases(self.store, clock=lambda: now).hold_job(ARTIFACT_COLLECT, self.grace_sec):
            return 0  # this round is another worker's (or was)
        try:
            state = orjson.loads(self.store.get(STATE_KEY).data)
        except errors.NotFound:
            state = {"candidates": []}
        live = self.live()
        entries = self.cache.entries()
        unreferenced = {
            entry.artifact_key
            for entry, _ in entries.values()
            if entry.artifact_key not in live and now - entry.used_at >= self.grace_sec
        }
        due = unreferenced & set(state["candidates"])
        marked = {"at": now, "candidates": sorted(unreferenced - due)}
        self.store.put(STATE_KEY, orjson.dumps(marked))
        kept: set[str] = set()
        for key, (entry, etag) in entries.items():
            if entry.artifact_key in due and not self.cache.drop(key, etag):
                kept.add(entry.artifact_key)  # used again meanwhile
        blobs = BlobRepo(self.store)
        deleted = 0
        for key in sorted(due - kept):
            sha = sha_of(key)
            if sha is not None and blobs.delete_if_untouched(sha, self.grace_sec, now) == "deleted":
                deleted += 1
        still_cached = {entry.artifact_key for entry, _ in entries.values()} - due
        started = time.monotonic()
        self.last_sweep = blobs.sweep(live | still_cached | set(self.pinned()), self.grace_sec, now)
        if self.last_sweep.deleted:
            log.info("freed %d unreferenced blobs in %.2fs", len(self.last_sweep.deleted),
                     time.monotonic() - started)  # fmt: skip
        return deleted + len(self.last_sweep.deleted)

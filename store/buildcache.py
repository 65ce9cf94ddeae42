"""The build cache's records: `buildcache/<key>.json`, one `CachedBuild` per cache key.

A hit touches its record with a conditional write and the artifact collector
(store/collect.py) deletes a record only if it is unchanged, so a build
reusing an artifact and a collection deleting it cannot both win.
"""

from __future__ import annotations

import contextlib

from . import errors
from ._base import Store
from .records import CachedBuild

PREFIX = "buildcache/"


def _key(cache_key: str) -> str:
    return f"{PREFIX}{cache_key}.json"


class BuildCacheRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, cache_key: str) -> tuple[CachedBuild, str] | None:
        """The record and its etag; None if there is none or it cannot be read."""
        try:
            blob = self.store.get(_key(cache_key))
            return CachedBuild.model_validate_json(blob.data), blob.etag
        except (errors.NotFound, ValueError):
            return None

    def artifact_exists(self, entry: CachedBuild) -> bool:
        return self.store.exists(entry.artifact_key)

    def touch(self, cache_key: str, entry: CachedBuild, etag: str) -> bool:
        """Write `entry` back unless the record changed since `etag` (False then)."""
        try:
            self.store.put(_key(cache_key), entry.model_dump_json().encode(), if_match=etag)
        except (errors.Conflict, errors.NotFound):
            return False
        return True

    def put(self, cache_key: str, entry: CachedBuild) -> None:
        self.store.put(_key(cache_key), entry.model_dump_json().encode())

    def entries(self) -> dict[str, tuple[CachedBuild, str]]:
        """Every readable record by its store key, with its etag."""
        found: dict[str, tuple[CachedBuild, str]] = {}
        for key in self.store.list(PREFIX):
            with contextlib.suppress(errors.NotFound, ValueError):
                blob = self.store.get(key)
                found[key] = (CachedBuild.model_validate_json(blob.data), blob.etag)
        return found

    def drop(self, key: str, etag: str) -> bool:
        """Delete a record (by its store key, from `entries`) unless it changed since."""
        try:
            self.store.delete(key, if_match=etag)
        except (errors.Conflict, errors.NotFound):
            return False
        return True

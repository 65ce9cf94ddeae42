"""The build cache: an unchanged function is never built twice.

A build is keyed by the sha256 of everything its artifact is made from —
the source files, runtime, handler, form, target, the toolchain's
fingerprint (its pinned installer), the glue's version (its files' hash) and
the compiler flags — so an upgraded toolchain or glue rebuilds, and nothing
else does. A `CachedBuild` record (store/buildcache.py) names the artifact
blob it produced; artifacts themselves are content-addressed blobs, so
identical artifacts share bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path

import orjson

from store import Store
from store.buildcache import BuildCacheRepo
from store.records import CachedBuild

from ._base import BuildRequest


def cache_key(
    request: BuildRequest,
    *,
    handler: str | None,
    form: str,
    toolchain: str,
    glue: str,
    flags: Iterable[str],
) -> str:
    material = {
        "runtime": request.runtime,
        "files": request.files or {},
        "handler": handler,
        "form": form,
        "target": request.target,
        "requirements": request.requirements,
        "toolchain": toolchain,
        "glue": glue,
        "flags": list(flags),
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def files_version(paths: Iterable[Path]) -> str:
    """A version for glue files: the hash of their names and bytes."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class BuildCache:
    def __init__(self, records: BuildCacheRepo | Store) -> None:
        """Over the build cache's repository (`FunctionRepo.build_cache()`), or a store's."""
        self.records = records if isinstance(records, BuildCacheRepo) else BuildCacheRepo(records)

    @staticmethod
    def key_for(builder: object, request: BuildRequest) -> str | None:
        """The builder's cache key, or None for builders that are not cached."""
        method = getattr(builder, "cache_key", None)
        return method(request) if method is not None else None

    def get(self, key: str) -> CachedBuild | None:
        """The earlier build under `key` whose artifact is still stored.

        A hit touches the record (`used_at`) with a conditional write: the
        artifact collector deletes only records it saw unchanged, so either
        this build keeps the artifact or it misses and builds again."""
        found = self.records.get(key)  # an unreadable record is a miss, and is overwritten
        if found is None:
            return None
        entry, etag = found
        if not self.records.artifact_exists(entry):
            return None  # collected since: build again
        entry.used_at = time.time()
        return entry if self.records.touch(key, entry, etag) else None

    def put(self, key: str, entry: CachedBuild) -> None:
        self.records.put(key, entry)

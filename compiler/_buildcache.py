"""The build cache: an unchanged function is never built twice.

A build is keyed by the sha256 of everything its artifact is made from —
the source files, runtime, handler, form, target, the toolchain's
fingerprint (its pinned installer), the glue's version (its files' hash) and
the compiler flags — so an upgraded toolchain or glue rebuilds, and nothing
else does. `buildcache/<key>.json` records the artifact blob it produced;
artifacts themselves are content-addressed blobs, so identical artifacts
share bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import orjson
from pydantic import BaseModel, Field

from store import Store, errors
from store.records import now

from ._base import BuildRequest

PREFIX = "buildcache/"


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


class CachedBuild(BaseModel):
    artifact_key: str
    artifact_sha256: str
    artifact_kind: str
    runtime_version: str
    size: int
    function_id: str  # the build that made it (for the log)
    version: int
    created_at: datetime = Field(default_factory=now)
    used_at: float = Field(default_factory=time.time)  # Unix seconds: made or last reused


class BuildCache:
    def __init__(self, store: Store) -> None:
        self.store = store

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
        try:
            blob = self.store.get(PREFIX + key + ".json")
            entry = CachedBuild.model_validate_json(blob.data)
        except errors.NotFound:
            return None
        except ValueError:  # an unreadable record is a miss, and is overwritten
            return None
        if not self.store.exists(entry.artifact_key):
            return None  # collected since: build again
        entry.used_at = time.time()
        try:
            self.store.put(PREFIX + key + ".json", entry.model_dump_json().encode(),
                           if_match=blob.etag)  # fmt: skip
        except (errors.Conflict, errors.NotFound):
            return None
        return entry

    def put(self, key: str, entry: CachedBuild) -> None:
        self.store.put(PREFIX + key + ".json", entry.model_dump_json().encode())

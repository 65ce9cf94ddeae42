"""The build cache records: key → artifact, a miss when the artifact is gone."""

from __future__ import annotations

import pytest

from compiler import BuildCache, BuildRequest, CachedBuild
from compiler._buildcache import cache_key
from store import LocalStore


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def entry(key: str) -> CachedBuild:
    return CachedBuild(
        artifact_key=key,
        artifact_sha256="ab" * 32,
        artifact_kind="module",
        runtime_version="c (zig 0.17.1, wasm32-wasi)",
        size=3,
        function_id="fn_a",
        version=2,
    )


def test_hit_while_the_artifact_is_stored(store):
    cache = BuildCache(store)
    assert cache.get("k") is None
    store.put("blobs/sha256/x", b"wasm")
    cache.put("k", entry("blobs/sha256/x"))
    hit = cache.get("k")
    assert hit is not None and hit.artifact_key == "blobs/sha256/x" and hit.version == 2
    store.delete("blobs/sha256/x")
    assert cache.get("k") is None  # collected since: build again


def test_an_unreadable_record_is_a_miss(store):
    store.put("buildcache/k.json", b"{not json")
    assert BuildCache(store).get("k") is None


def test_key_covers_every_input():
    request = BuildRequest("fn", 1, "c", None, None, None, files={"a.c": "x"})
    base = dict(handler="handler", form="handler", toolchain="zig 1", glue="g1", flags=["-O2"])
    key = cache_key(request, **base)
    assert len(key) == 64 and key == cache_key(request, **base)
    for field, value in (("handler", "h2"), ("form", "program"), ("toolchain", "zig 2"),
                         ("glue", "g2"), ("flags", ["-O3"])):  # fmt: skip
        assert cache_key(request, **{**base, field: value}) != key
    other = BuildRequest("fn", 1, "c", None, None, None, files={"a.c": "y"})
    assert cache_key(other, **base) != key

"""Collecting compiled artifacts no version uses: mark from versions, sweep after a grace."""

from __future__ import annotations

import orjson
import pytest

from compiler import BuildCache
from store import LocalStore
from store.collect import ArtifactCollector
from store.records import CachedBuild

GRACE = 100.0


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def artifact(store, name: str, *, used_at: float = 0.0) -> str:
    key = f"blobs/sha256/{name}"
    store.put(key, b"wasm " + name.encode())
    store.put(f"precompiled/{name}/engine.cwasm", b"code")
    store.put(f"precompiled/{name}/engine.json", b"{}")
    entry = CachedBuild(artifact_key=key, artifact_sha256=name, artifact_kind="module",
                        runtime_version="go", size=5, function_id="fn_a", version=1,
                        used_at=used_at)  # fmt: skip
    store.put(f"buildcache/{name}.json", entry.model_dump_json().encode())
    return key


def version(store, function_id: str, artifact_key: str) -> None:
    build = {"artifact_key": artifact_key, "mounts": [{"key": "blobs/sha256/m"}]}
    record = {"function_id": function_id, "source_key": "blobs/sha256/src", "build": build}
    store.put(f"versions/{function_id}/00000001.json", orjson.dumps(record))


def test_unused_artifacts_go_after_two_collections_a_grace_apart(store):
    live = artifact(store, "live")
    dead = artifact(store, "dead")
    store.put("blobs/sha256/src", b"source")  # not the collector's to take
    version(store, "fn_a", live)
    collector = ArtifactCollector(store, grace_sec=GRACE)
    assert collector.live() == {live, "blobs/sha256/src", "blobs/sha256/m"}

    assert collector.collect(now=1000) == 0  # first sight: a candidate only
    assert store.exists(dead)
    assert collector.collect(now=1050) == 0  # within the grace: nothing runs
    assert collector.collect(now=1100) == 1
    assert not store.exists(dead) and not store.exists("buildcache/dead.json")
    assert list(store.list("precompiled/dead/")) == []
    assert store.exists(live) and store.exists("buildcache/live.json")
    assert list(store.list("precompiled/live/")) != []
    assert store.exists("blobs/sha256/src")


def test_an_artifact_used_again_in_the_meantime_stays(store):
    key = artifact(store, "again")
    collector = ArtifactCollector(store, grace_sec=GRACE)
    collector.collect(now=1000)
    version(store, "fn_b", key)  # a new version uses it
    assert collector.collect(now=1200) == 0
    assert store.exists(key)


def test_a_recent_cache_hit_protects_its_artifact(store):
    key = artifact(store, "hit", used_at=0.0)
    collector = ArtifactCollector(store, grace_sec=GRACE)
    collector.collect(now=1000)
    assert BuildCache(store).get("hit") is not None  # touches used_at (now: wall clock)
    assert collector.collect(now=1200) == 0
    assert store.exists(key)


def test_a_hit_after_collection_is_a_miss(store):
    artifact(store, "gone")
    collector = ArtifactCollector(store, grace_sec=GRACE)
    collector.collect(now=1000)
    collector.collect(now=1100)
    assert BuildCache(store).get("gone") is None

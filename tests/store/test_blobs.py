"""Freeing blobs nothing refers to (sources, uploaded artifacts, their precompiled forms)
without racing a create that reuses the same bytes: on local files and SeaweedFS."""

from __future__ import annotations

import threading
import time

import pytest

from compiler import ArtifactCollector
from store import Store, errors
from store.blobs import BlobMark, BlobRepo, blob_key, mark_key, precompiled_prefix
from store.functions import FunctionRepo
from store.records import Function, Version

GRACE = 100.0


def version(repo: FunctionRepo, function_id: str, n: int, source: str, artifact: str) -> None:
    record = Version(function_id=function_id, version=n, runtime="wasm", source_key=source,
                     source_kind="binary", source_sha256=source.rsplit("/", 1)[1],
                     code_size=4, memory_mb=128, timeout_sec=30)  # fmt: skip
    record.build.artifact_key = artifact
    repo.write(f"versions/{function_id}/{n:08d}.json", record)


def precompiled(store: Store, key: str) -> str:
    prefix = precompiled_prefix(key.rsplit("/", 1)[1])
    store.put(prefix + "engine.cwasm", b"native code")
    store.put(prefix + "engine.json", b"{}")
    return prefix


def collect(store: Store, at: float) -> int:
    """One round at `at` (rounds are a grace apart: the collector holds its job that long)."""
    return ArtifactCollector(store, grace_sec=GRACE).collect(now=at)


def test_a_pruned_versions_unique_blobs_are_freed_after_the_grace(cas_store):
    repo = FunctionRepo(cas_store)
    source, _ = repo.put_blob(b"source of v1")
    wasm, _ = repo.put_blob(b"\0asm only v1")
    shared, _ = repo.put_blob(b"\0asm of v1 and v2")
    version(repo, "fn_a", 1, source, wasm)
    version(repo, "fn_a", 2, shared, shared)
    version(repo, "fn_a", 3, source, shared)  # v3 keeps v1's source
    forms = precompiled(cas_store, wasm)
    repo.delete_version("fn_a", 1)  # pruned
    t0 = time.time()

    assert collect(cas_store, t0 + 1) == 0  # touched just now: within the grace
    assert cas_store.exists(wasm)
    assert collect(cas_store, t0 + GRACE + 2) == 1

    assert not cas_store.exists(wasm) and not cas_store.exists(mark_key(wasm[-64:]))
    assert list(cas_store.list(forms)) == []
    assert cas_store.exists(source) and cas_store.exists(shared)  # v3 still names them


def test_a_blob_shared_with_a_live_version_is_never_freed(cas_store):
    repo = FunctionRepo(cas_store)
    code, _ = repo.put_blob(b"the same bytes in two functions")
    version(repo, "fn_a", 1, code, code)
    version(repo, "fn_b", 1, code, code)
    repo.delete_version("fn_a", 1)
    later = time.time() + 10 * GRACE
    for round_ in range(3):
        assert collect(cas_store, later + round_ * GRACE) == 0
    assert cas_store.get(code).data == b"the same bytes in two functions"


def test_a_blob_stored_before_marks_existed_waits_a_full_grace(cas_store):
    old = blob_key("0" * 64)
    cas_store.put(old, b"from an older release")  # no mark
    later = time.time() + 10 * GRACE
    assert collect(cas_store, later) == 0  # first sight: marked, its grace starts
    assert cas_store.exists(old)
    assert collect(cas_store, later + GRACE) == 1
    assert not cas_store.exists(old)


class Interleaved:
    """Runs `hook` once, at a chosen point of the sweep's own store calls."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.on_get: dict[str, object] = {}
        self.on_delete: dict[str, object] = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get(self, key):
        blob = self.inner.get(key)  # read before the hook runs: the sweep sees the old mark
        if hook := self.on_get.pop(key, None):
            hook()
        return blob

    def delete(self, key, **kw):
        if hook := self.on_delete.pop(key, None):
            hook()
        return self.inner.delete(key, **kw)


def test_a_create_reusing_a_blob_between_the_sweeps_read_and_claim_keeps_it(cas_store):
    repo = FunctionRepo(cas_store)
    code, sha = repo.put_blob(b"reused bytes")
    version(repo, "fn_old", 1, code, code)
    repo.delete_version("fn_old", 1)
    store = Interleaved(cas_store)

    def create_reusing_it() -> None:  # put_blob finds the bytes there: it uploads nothing
        assert repo.put_blob(b"reused bytes") == (code, sha)
        version(repo, "fn_new", 1, code, code)

    store.on_get[mark_key(sha)] = create_reusing_it
    live = ArtifactCollector(cas_store).live() - {code}  # the sweep listed before the create
    report = BlobRepo(store).sweep(live, GRACE, now=time.time() + 10 * GRACE)

    assert report.deleted == [] and report.lost_races == 1
    assert cas_store.get(code).data == b"reused bytes"


def test_a_create_reusing_a_blob_the_sweep_already_claimed_uploads_it_again(cas_store):
    repo = FunctionRepo(cas_store)
    code, sha = repo.put_blob(b"claimed bytes")
    cas_store.put(precompiled_prefix(sha) + "engine.cwasm", b"native code")
    store = Interleaved(cas_store)
    created = threading.Event()

    def create_meanwhile() -> None:  # the sweep has claimed the mark and is about to delete
        def create() -> None:
            repo.put_blob(b"claimed bytes")
            version(repo, "fn_new", 1, code, code)
            created.set()

        threading.Thread(target=create).start()
        assert not created.wait(0.5)  # the create waits for the sweep to finish

    store.on_delete[code] = create_meanwhile
    report = BlobRepo(store).sweep(set(), GRACE, now=time.time() + 10 * GRACE)

    assert report.deleted == [code]
    assert created.wait(10)
    assert cas_store.get(code).data == b"claimed bytes"  # uploaded again after the sweep


def test_deleting_a_function_frees_its_unique_blobs(cas_store):
    repo = FunctionRepo(cas_store)
    fn = Function(id="fn_gone", name="gone", runtime="wasm", latest_version=2)
    repo.create_function(fn)
    mine, _ = repo.put_blob(b"only this function's bytes")
    shared, _ = repo.put_blob(b"bytes another function has too")
    version(repo, fn.id, 1, mine, mine)
    version(repo, fn.id, 2, shared, shared)
    version(repo, "fn_other", 1, shared, shared)
    forms = precompiled(cas_store, mine)
    repo.delete_function(fn)

    assert collect(cas_store, time.time() + 2 * GRACE) == 1
    assert not cas_store.exists(mine) and list(cas_store.list(forms)) == []
    assert cas_store.exists(shared)


def test_reuses_racing_sweeps_never_leave_a_version_without_its_bytes(cas_store):
    """Real threads: a create reuses the bytes of a version pruned long ago while a
    sweep runs; whoever wins, the new version's blob exists afterwards."""
    repo = FunctionRepo(cas_store)
    blobs = BlobRepo(cas_store)
    for i in range(20):
        data = f"round {i}".encode()
        code, sha = repo.put_blob(data)
        cas_store.put(mark_key(sha), BlobMark(touched_at=0.0).model_dump_json().encode())
        version(repo, "fn_old", i, code, code)
        repo.delete_version("fn_old", i)
        go = threading.Barrier(2)

        def create(data=data, code=code, i=i, go=go) -> None:
            go.wait()
            repo.put_blob(data)
            version(repo, "fn_new", i, code, code)

        creator = threading.Thread(target=create)
        creator.start()
        go.wait()
        live = ArtifactCollector(cas_store).live()
        blobs.sweep(live, GRACE)
        creator.join()
        assert cas_store.exists(code), f"round {i}: version {i} of fn_new lost its bytes"


def test_a_mark_whose_blob_never_came_goes_once_old(cas_store):
    blobs = BlobRepo(cas_store)
    blobs.touch("a" * 64)  # a create touched it, then died before uploading
    blobs.touch("b" * 64)
    cas_store.put(mark_key("a" * 64), BlobMark(touched_at=0.0).model_dump_json().encode())
    blobs.sweep(set(), GRACE)
    assert not cas_store.exists(mark_key("a" * 64))
    assert cas_store.exists(mark_key("b" * 64))  # its upload may still be on the way


def test_a_version_that_keeps_its_code_touches_it_and_refuses_code_already_freed(cas_store):
    repo = FunctionRepo(cas_store)
    fn = Function(id="fn_keep", name="keep", runtime="wasm")
    repo.create_function(fn)
    code, sha = repo.put_blob(b"kept by a config-only update")
    cas_store.put(mark_key(sha), BlobMark(touched_at=0.0).model_dump_json().encode())
    version(repo, fn.id, 1, code, code)
    fn.latest_version = 1

    def keep(previous, n):
        return previous.model_copy(update={"version": n, "memory_mb": 256})

    repo.new_version(fn, keep)
    mark = BlobMark.model_validate_json(cas_store.get(mark_key(sha)).data)
    assert time.time() - mark.touched_at < 60  # a sweep now waits a grace before it

    cas_store.delete(code)  # as if freed between the read of v2 and the write of v3
    fn.latest_version = 2
    with pytest.raises(errors.Conflict) as refused:
        repo.new_version(fn, keep)
    assert refused.value.code == "code_collected"
    assert not cas_store.exists("versions/fn_keep/00000003.json")


def test_many_creates_storing_the_same_bytes_at_once_all_get_them(cas_store):
    repo = FunctionRepo(cas_store)
    go = threading.Barrier(8)
    results: list[tuple[str, str]] = []

    def create() -> None:
        go.wait()
        results.append(repo.put_blob(b"the same upload, eight times"))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8 and len(set(results)) == 1
    assert cas_store.get(results[0][0]).data == b"the same upload, eight times"
    mark = BlobMark.model_validate_json(cas_store.get(mark_key(results[0][1])).data)
    assert mark.deleting_since is None and time.time() - mark.touched_at < 60

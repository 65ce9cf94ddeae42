"""The `Store` contract, run against every backend (see conftest.py)."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from store import Blob, LocalStore, Store, errors, open_store
from tests.s3servers import S3Server

from .conftest import MOTO, SEAWEEDFS, MakeStore

# -- basics -----------------------------------------------------------------


def test_put_get_round_trip_and_etags_agree(store: Store) -> None:
    etag = store.put("records/fn_1.json", b'{"n": 1}')
    blob = store.get("records/fn_1.json")
    assert blob.data == b'{"n": 1}'
    assert blob.etag == etag == store.head("records/fn_1.json")
    assert '"' not in etag
    assert store.exists("records/fn_1.json")


def test_overwrite_changes_etag(store: Store) -> None:
    first = store.put("k", b"one")
    second = store.put("k", b"two")
    assert first != second
    assert store.get("k") == Blob(b"two", second)
    assert store.head("k") == second


def test_empty_object(store: Store) -> None:
    etag = store.put("empty", b"")
    assert store.get("empty").data == b""
    assert store.head("empty") == etag


def test_get_missing_is_not_found(store: Store) -> None:
    with pytest.raises(errors.NotFound):
        store.get("nope/missing.json")
    with pytest.raises(errors.NotFound):
        store.get("nope/missing.json", quick=True)


def test_a_quick_get_reads_what_get_reads(store: Store) -> None:
    etag = store.put("records/fn_1.json", b'{"n": 1}')
    assert store.get("records/fn_1.json", quick=True) == Blob(b'{"n": 1}', etag)


def test_head_missing_is_none(store: Store) -> None:
    assert store.head("nope/missing.json") is None
    assert not store.exists("nope/missing.json")


def test_nested_keys(store: Store) -> None:
    key = "functions/fn_abc/versions/3/artifact.wasm"
    store.put(key, b"\x00asm")
    assert store.get(key).data == b"\x00asm"
    assert list(store.list("functions/fn_abc/versions/")) == [key]


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "../escape", "a/./b", "a/../b", "trailing/"])
def test_invalid_keys_rejected(store: Store, key: str) -> None:
    with pytest.raises(errors.Invalid):
        store.put(key, b"x")
    with pytest.raises(errors.Invalid):
        store.get(key)


# -- conditional writes -------------------------------------------------------


def test_create_on_new_key_succeeds(store: Store) -> None:
    etag = store.put("names/alpha", b"fn_1", create=True)
    assert store.head("names/alpha") == etag


def test_create_on_existing_key_conflicts(store: Store) -> None:
    store.put("names/alpha", b"fn_1")
    with pytest.raises(errors.Conflict):
        store.put("names/alpha", b"fn_2", create=True)
    assert store.get("names/alpha").data == b"fn_1"


def test_if_match_current_etag_succeeds(store: Store) -> None:
    etag = store.put("counter", b"1")
    new = store.put("counter", b"2", if_match=etag)
    assert new != etag
    assert store.get("counter") == Blob(b"2", new)
    assert store.head("counter") == new


def test_if_match_stale_etag_conflicts(store: Store) -> None:
    stale = store.put("counter", b"1")
    current = store.put("counter", b"2")
    with pytest.raises(errors.Conflict):
        store.put("counter", b"3", if_match=stale)
    assert store.get("counter").data == b"2"
    assert store.head("counter") == current


def test_if_match_on_missing_key_conflicts(store: Store) -> None:
    etag = store.put("other", b"1")
    with pytest.raises(errors.Conflict):
        store.put("missing", b"1", if_match=etag)
    assert store.head("missing") is None


def test_etag_from_get_works_for_if_match(store: Store) -> None:
    store.put("k", b"1")
    blob = store.get("k")
    store.put("k", b"2", if_match=blob.etag)
    assert store.get("k").data == b"2"


# -- delete ---------------------------------------------------------------------


def test_delete_is_idempotent(store: Store) -> None:
    store.put("k", b"1")
    store.delete("k")
    assert store.head("k") is None
    store.delete("k")
    store.delete("never/existed")


def test_delete_with_current_etag(store: Store) -> None:
    etag = store.put("k", b"1")
    store.delete("k", if_match=etag)
    assert store.head("k") is None


def test_delete_with_stale_etag_conflicts(store: Store) -> None:
    stale = store.put("k", b"1")
    store.put("k", b"2")
    with pytest.raises(errors.Conflict):
        store.delete("k", if_match=stale)
    assert store.get("k").data == b"2"


def test_delete_missing_with_if_match_conflicts(store: Store) -> None:
    etag = store.put("other", b"1")
    with pytest.raises(errors.Conflict):
        store.delete("missing", if_match=etag)


# -- list -----------------------------------------------------------------------


def test_list_by_prefix_sorted(store: Store) -> None:
    keys = ["fns/b", "fns/a/2", "fns/a/1", "fns/c.json", "fnsx/1", "other/fns/x", "fn"]
    for key in keys:
        store.put(key, b"x")
    assert list(store.list("fns/")) == ["fns/a/1", "fns/a/2", "fns/b", "fns/c.json"]
    assert list(store.list("fns/a/")) == ["fns/a/1", "fns/a/2"]
    assert list(store.list("fns")) == ["fns/a/1", "fns/a/2", "fns/b", "fns/c.json", "fnsx/1"]
    assert list(store.list("")) == sorted(keys)
    assert list(store.list("none/")) == []


def test_list_after_delete(store: Store) -> None:
    store.put("d/1", b"x")
    store.put("d/2", b"x")
    store.delete("d/1")
    assert list(store.list("d/")) == ["d/2"]


def test_stores_do_not_see_each_others_keys(make_store: MakeStore) -> None:
    # "p" is a prefix of "p2": an S3 prefix without its "/" would leak.
    a, b = make_store("p"), make_store("p2")
    a.put("k/1", b"a")
    b.put("k/2", b"b")
    assert list(a.list("")) == ["k/1"]
    assert list(b.list("k/")) == ["k/2"]
    assert a.head("k/2") is None
    with pytest.raises(errors.NotFound):
        b.get("k/1")


def test_list_follows_pages(store: Store) -> None:
    # NOTE: small pages so a few keys span several LIST requests (S3's page is 1000).
    if hasattr(store, "page_size"):
        store.page_size = 3
    keys = [f"many/{i:02d}" for i in range(11)]
    for key in keys:
        store.put(key, b"")
    assert list(store.list("many/")) == keys


# -- files ----------------------------------------------------------------------


def test_put_file_get_file_multi_mb(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    data = os.urandom(6 * 1024 * 1024 + 123)
    source.write_bytes(data)
    etag = store.put_file("artifacts/big.wasm", source)
    assert store.head("artifacts/big.wasm") == etag
    target = tmp_path / "out" / "nested" / "big.wasm"
    store.get_file("artifacts/big.wasm", target)
    assert target.read_bytes() == data
    assert store.get("artifacts/big.wasm") == Blob(data, etag)
    assert sorted(p.name for p in target.parent.iterdir()) == ["big.wasm"]


def test_get_file_replaces_existing(store: Store, tmp_path: Path) -> None:
    store.put("small", b"new")
    target = tmp_path / "small"
    target.write_bytes(b"old contents")
    store.get_file("small", target)
    assert target.read_bytes() == b"new"


def test_get_file_missing_leaves_nothing(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "dl" / "missing.bin"
    target.parent.mkdir()
    with pytest.raises(errors.NotFound):
        store.get_file("missing.bin", target)
    assert list(target.parent.iterdir()) == []


def test_ping(store: Store) -> None:
    store.ping()


# -- concurrency ----------------------------------------------------------------


def _increment(store: Store, key: str, times: int) -> int:
    """Read-modify-write `times` increments; returns how many attempts conflicted."""
    conflicts = 0
    for _ in range(times):
        while True:
            blob = store.get(key)
            try:
                store.put(key, str(int(blob.data) + 1).encode(), if_match=blob.etag)
                break
            except errors.Conflict:
                conflicts += 1
    return conflicts


def _run_threads(count: int, target, *args) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count
    failures: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i, *args)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_concurrent_increments_lose_no_update(cas_store: Store) -> None:
    store = cas_store
    store.put("counter", b"0", create=True)
    conflicts = _run_threads(8, lambda _i: _increment(store, "counter", 25))
    assert int(store.get("counter").data) == 8 * 25
    assert sum(conflicts) > 0  # the writers really raced


def test_create_race_has_exactly_one_winner(cas_store: Store) -> None:
    store = cas_store

    def create(i: int) -> bool:
        try:
            store.put("names/contested", f"fn_{i}".encode(), create=True)
        except errors.Conflict:
            return False
        return True

    won = _run_threads(8, create)
    assert won.count(True) == 1
    assert store.get("names/contested").data == f"fn_{won.index(True)}".encode()


def _increment_local(root: str, key: str, times: int) -> None:
    _increment(LocalStore(Path(root)), key, times)


def test_local_increments_across_processes(tmp_path: Path) -> None:
    """The local backend's flock CAS holds between processes, not only threads."""
    LocalStore(tmp_path).put("counter", b"0", create=True)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_increment_local, args=(str(tmp_path), "counter", 25)) for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * 4
    assert int(LocalStore(tmp_path).get("counter").data) == 4 * 25


# -- S3 specifics ---------------------------------------------------------------


@pytest.fixture(params=[SEAWEEDFS, MOTO])
def s3_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    server: S3Server = request.getfixturevalue(request.param)
    for var, value in server.env().items():
        monkeypatch.setenv(var, value)
    return server


def test_open_store_s3_creates_bucket(s3_server: S3Server) -> None:
    store = open_store("s3://nimbus-fresh-bucket/some/prefix", endpoint_url=s3_server.endpoint_url)
    store.ping()
    store.ping()  # an existing bucket is fine
    etag = store.put("k", b"v", create=True)
    assert store.get("k") == Blob(b"v", etag)
    assert list(store.list("")) == ["k"]
    store.close()


def test_first_write_creates_missing_bucket(s3_server: S3Server) -> None:
    store = open_store("s3://nimbus-lazy-bucket", endpoint_url=s3_server.endpoint_url)
    assert store.head("k") is None
    assert list(store.list("")) == []
    store.delete("k")
    store.put("k", b"v")
    assert store.get("k").data == b"v"
    store.close()


def test_unreachable_s3_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from store._s3 import S3Store

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    store = S3Store("bucket", "p", endpoint_url="http://127.0.0.1:9", region="us-east-1")
    with pytest.raises(errors.Unavailable):
        store.ping()
    with pytest.raises(errors.Unavailable):
        store.get("k")

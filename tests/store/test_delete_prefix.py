"""`Store.delete_prefix` and `delete_keys` on every backend (see conftest.py): what
goes, what stays, what is refused; on S3 in DeleteObjects requests of 1,000 keys."""

from __future__ import annotations

import multiprocessing
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from store import LocalStore, Store, errors


def put_all(store: Store, keys: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: store.put(key, b"x"), keys))


def test_everything_under_the_prefix_goes_nested_or_not_and_nothing_else(store: Store) -> None:
    kept = ["fn", "f/ns/1", "other/fns/a/1", "fnz/1"]
    put_all(store, ["fns/a/1", "fns/a/b/c/2", "fns/b.json", "fnsx/1", "fns-a/1", *kept])

    assert store.delete_prefix("fns/a/") == 2
    assert list(store.list("fns/")) == ["fns/b.json"]
    # A prefix is a prefix of keys, as `list` reads it: not only whole folders.
    assert store.delete_prefix("fns") == 3
    assert list(store.list("")) == sorted(kept)
    assert store.delete_prefix("fns/") == 0
    # What was deleted can be written again.
    store.put("fns/a/b/c/2", b"again")
    assert store.get("fns/a/b/c/2").data == b"again"


def test_a_prefix_naming_no_key_is_refused_and_nothing_is_deleted(store: Store) -> None:
    put_all(store, ["a/1", "a/b/2", "z"])
    for prefix in ["", "/", "//", "..", "../", "a//", "/a/", "a/../"]:
        with pytest.raises(errors.Invalid):
            store.delete_prefix(prefix)
    assert list(store.list("")) == ["a/1", "a/b/2", "z"]


def test_thousands_of_keys_go_in_one_call(store: Store) -> None:
    keys = [f"many/{i // 100:02d}/{i:04d}.json" for i in range(2100)]  # 3 DeleteObjects on S3
    put_all(store, [*keys, "many.json", "manx/1"])
    requests = _count_requests(store)

    assert store.delete_prefix("many/") == 2100

    if requests is not None:
        assert requests == {"DeleteObjects": 3, "DeleteObject": 0, "ListObjectsV2": 3}
    assert list(store.list("")) == ["manx/1", "many.json"]


def test_delete_keys_deletes_those_keys_and_ignores_missing_ones(store: Store) -> None:
    put_all(store, ["k/1", "k/2", "k/3"])
    store.delete_keys(["k/1", "k/3", "k/missing", "nowhere/at/all"])
    assert list(store.list("")) == ["k/2"]
    store.delete_keys([])
    assert list(store.list("")) == ["k/2"]


def test_a_local_store_leaves_no_empty_folders_behind(tmp_path: Path) -> None:
    """Listings walk folders: an hour of window stats must not leave one per function."""
    store = LocalStore(tmp_path / "s")
    put_all(store, ["stats/raw/0001/fn_a/1.json", "stats/raw/0001/fn_b/1.json",
                    "stats/raw/0002/fn_a/1.json", "queue/builds/fn_a.1",
                    "queue/builds/fn_b.1"])  # fmt: skip
    store.delete_prefix("stats/raw/0001/")
    store.delete_prefix("queue/builds/fn_a.")
    objects = store.root / "objects"
    folders = sorted(str(p.relative_to(objects)) for p in objects.rglob("*") if p.is_dir())
    assert folders == ["queue", "queue/builds", "stats", "stats/raw", "stats/raw/0002",
                       "stats/raw/0002/fn_a"]  # fmt: skip


def _write_until(root: str, writer: int, seconds: float) -> None:
    store = LocalStore(Path(root))
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        store.put(f"hot/{n % 2}/a/b/{writer}-{n}", b"x")


def test_writes_under_a_prefix_being_deleted_never_fail(tmp_path: Path) -> None:
    """A local store removes the folders it emptied; a write meanwhile (here from other
    processes) makes them again."""
    root = tmp_path / "s"
    store = LocalStore(root)
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_until, args=(str(root), i, 2.0)) for i in range(2)]
    for writer in writers:
        writer.start()
    deleted = 0
    while any(writer.is_alive() for writer in writers):
        deleted += store.delete_prefix("hot/")
    for writer in writers:
        writer.join(timeout=30)
    assert [writer.exitcode for writer in writers] == [0, 0]
    assert deleted > 0


# -- S3: the batches' answers ----------------------------------------------------


def test_keys_a_batch_reports_it_could_not_delete_are_deleted_one_by_one(s3_store) -> None:
    """The server answers DeleteObjects with an error for one key (here it is made to
    keep "k/2" and say InternalError; "k/3" it says NoSuchKey): that key is deleted
    on its own, a missing one is not."""
    put_all(s3_store, ["k/1", "k/2", "k/3"])
    full = s3_store._key

    def keep_k2(params, **_):
        objects = params["Delete"]["Objects"]
        objects[:] = [o for o in objects if o["Key"] != full("k/2")]

    def report_errors(parsed, **_):
        parsed["Errors"] = [
            {"Key": full("k/2"), "Code": "InternalError", "Message": "busy"},
            {"Key": full("k/3"), "Code": "NoSuchKey", "Message": "gone"},
        ]

    events = s3_store._s3.meta.events
    events.register("before-parameter-build.s3.DeleteObjects", keep_k2)
    events.register("after-call.s3.DeleteObjects", report_errors)
    requests = _count_requests(s3_store)

    assert s3_store.delete_prefix("k/") == 3

    assert requests == {"DeleteObjects": 1, "DeleteObject": 1, "ListObjectsV2": 1}
    assert list(s3_store.list("")) == []


def test_a_server_without_delete_objects_deletes_key_by_key(s3_store) -> None:
    """No server here lacks DeleteObjects: the request is answered 501 NotImplemented
    before it is sent, as such a server would answer it."""

    def not_implemented(**_):
        error = {"Code": "NotImplemented", "Message": "A header you provided implies"
                 " functionality that is not implemented"}  # fmt: skip
        return types.SimpleNamespace(status_code=501), {
            "Error": error, "ResponseMetadata": {"HTTPStatusCode": 501}
        }  # fmt: skip

    put_all(s3_store, ["a/1", "a/2", "b/1"])
    requests = _count_requests(s3_store)  # first: it sees the request the next one answers
    s3_store._s3.meta.events.register("before-call.s3.DeleteObjects", not_implemented)

    assert s3_store.delete_prefix("a/") == 2
    assert s3_store.delete_prefix("b/") == 1

    # Refused once; from then on every key on its own.
    assert requests == {"DeleteObjects": 1, "DeleteObject": 3, "ListObjectsV2": 2}
    assert list(s3_store.list("")) == []


def test_deleting_in_a_bucket_not_made_yet_deletes_nothing(s3_store) -> None:
    from store._s3 import S3Store

    assert isinstance(s3_store, S3Store)
    fresh = S3Store(
        f"nimbus-never-{id(s3_store):x}", "p",
        endpoint_url=s3_store.endpoint_url, region=s3_store._s3.meta.region_name,
    )  # fmt: skip
    try:
        assert fresh.delete_prefix("a/") == 0
        fresh.delete_keys(["a/1"])
    finally:
        fresh.close()


def _count_requests(store: Store) -> dict[str, int] | None:
    """On S3, a live count of the requests the store makes from here on, by operation."""
    client = getattr(store, "_s3", None)
    if client is None:
        return None
    counts = {"DeleteObjects": 0, "DeleteObject": 0, "ListObjectsV2": 0}

    def count(model, **_):
        counts[model.name] += 1

    for operation in counts:
        client.meta.events.register(f"before-call.s3.{operation}", count)
    return counts

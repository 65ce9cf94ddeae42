"""`check_reads`: what `/ready` asks the store. Ready means the store reads an object back,
not only that it answers: a SeaweedFS whose volume server is away answers HeadBucket (what
`ping` asks) while every object read is a 500."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from store import LocalStore, Store, check_reads, errors, open_store
from store.readiness import READY_KEY
from tests.s3servers import S3Server, seaweedfs_process


def test_the_first_check_writes_the_object_and_the_next_ones_read_it(store: Store) -> None:
    assert store.head(READY_KEY) is None  # a new store, or one from before the check
    check_reads(store)
    etag = store.head(READY_KEY)
    assert etag is not None
    check_reads(store)
    assert store.head(READY_KEY) == etag  # read, not written again

    store.delete(READY_KEY)  # deleted by hand: written again
    check_reads(store)
    assert store.get(READY_KEY).etag == etag


def test_a_local_store_whose_folder_went_away_is_unavailable_and_not_made_anew(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    check_reads(store)
    shutil.rmtree(tmp_path / "store" / "objects")  # an unmounted volume looks like this
    with pytest.raises(errors.Unavailable, match="is missing"):
        check_reads(store)
    assert not (tmp_path / "store" / "objects").exists()


@pytest.mark.s3
def test_a_new_bucket_is_made(seaweedfs: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in seaweedfs.env().items():
        monkeypatch.setenv(var, value)
    store = open_store("s3://nimbus-ready-new/p", endpoint_url=seaweedfs.endpoint_url)
    try:
        check_reads(store)
        assert list(store.list("")) == [READY_KEY]
    finally:
        store.close()


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_a_store_that_answers_but_reads_nothing_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with seaweedfs_process(tmp_path / "weed", volume_apart=True) as weed:
        for var, value in weed.server.env().items():
            monkeypatch.setenv(var, value)
        store = open_store("s3://nimbus-ready/p", endpoint_url=weed.server.endpoint_url)
        try:
            check_reads(store)
            store.put("kept", b"before")

            weed.stop_volume()
            store.ping()  # it answers HeadBucket: what /ready asked before
            with pytest.raises(errors.Unavailable):
                store.get("kept")
            with pytest.raises(errors.Unavailable):
                check_reads(store)

            weed.start_volume()
            _until_reads(store)
            assert store.get("kept").data == b"before"
        finally:
            store.close()


def _until_reads(store: Store, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            check_reads(store)
            return
        except errors.Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)

"""The local store's file-system failures are the store's errors, never a bare OSError
(which the API answered with 500 and the recorder took for a bug, dropping its batches)."""

from __future__ import annotations

import pytest

from compiler import bounded_folder
from store import LocalStore, errors


def test_a_full_disk_is_unavailable_and_keeps_what_was_stored(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    with bounded_folder(root, 1) as bounded:
        assert bounded, "a 1 MB tmpfs is needed to fill a disk"
        store = LocalStore(root)
        store.put("small", b"x")
        with pytest.raises(errors.Unavailable):
            store.put("big", b"x" * (2 << 20))
        big = tmp_path / "big.bin"
        big.write_bytes(b"y" * (2 << 20))
        with pytest.raises(errors.Unavailable):
            store.put_file("big", big)
        assert store.get("small").data == b"x"
        assert list(store.list("")) == ["small"]


def test_a_key_that_is_only_a_prefix_of_others_is_no_object(tmp_path):
    store = LocalStore(tmp_path)
    store.put("a/b", b"x")
    with pytest.raises(errors.NotFound):
        store.get("a")
    assert store.head("a") is None
    store.delete("a")  # a folder, not an object: nothing to delete
    store.delete("a/b/c")  # under an object: nothing either
    assert store.get("a/b").data == b"x"

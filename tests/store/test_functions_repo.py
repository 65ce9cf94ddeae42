"""Version numbering and name claims on the local store, many threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from store import LocalStore, errors
from store.functions import FunctionRepo
from store.records import Function, Version


def _version(fn: Function, n: int, note: str) -> Version:
    return Version(
        function_id=fn.id, version=n, runtime="wasm", source_key=note, source_kind="binary",
        source_sha256="0", code_size=1, memory_mb=128, timeout_sec=30,
    )  # fmt: skip


def test_racing_versions_are_contiguous_and_each_derives_from_the_one_before(tmp_path):
    repo = FunctionRepo(LocalStore(tmp_path))
    fn = Function(id="fn_race", name="race", runtime="wasm")
    repo.create_function(fn)

    def make(i: int) -> int:
        def derive(previous, n):
            chain = (previous.source_key + ",") if previous else ""
            return _version(fn, n, f"{chain}{i}")

        return repo.new_version(fn, derive).version

    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(make, range(40)))
    assert sorted(numbers) == list(range(1, 41))
    last = repo.get_version(fn.id, 40)[0]
    assert sorted(int(x) for x in last.source_key.split(",")) == list(range(40))  # none lost
    assert repo.get(fn.id)[0].latest_version == 40


def test_names_are_unique(tmp_path):
    repo = FunctionRepo(LocalStore(tmp_path))
    repo.create_function(Function(id="fn_a", name="same", runtime="wasm"))
    with pytest.raises(errors.Conflict):
        repo.create_function(Function(id="fn_b", name="same", runtime="wasm"))
    assert repo.resolve("same")[0].id == "fn_a"


def test_webhook_keys_never_name_store_objects_and_old_entries_are_migrated(tmp_path):
    store = LocalStore(tmp_path)
    repo = FunctionRepo(store)
    fn = Function(id="fn_hook", name="hook", runtime="wasm", webhook_key="secret-key-one")
    repo.create_function(fn)
    assert repo.function_for_webhook("secret-key-one") == "fn_hook"
    assert not any("secret-key" in name for name in store.list(""))
    # Entries from before the index was hashed: one found (and moved) by a lookup,
    # the rest moved by the start-time migration.
    store.put("webhooks/old-key-two.json", b'{"function_id": "fn_two"}')
    store.put("webhooks/old-key-three.json", b'{"function_id": "fn_three"}')
    assert repo.function_for_webhook("old-key-two") == "fn_two"
    assert repo.migrate_webhook_index() == 1
    assert repo.migrate_webhook_index() == 0
    assert repo.function_for_webhook("old-key-three") == "fn_three"
    assert not any("old-key" in name for name in store.list(""))
    repo.rotate_webhook("fn_hook", "secret-key-new")
    with pytest.raises(errors.NotFound):
        repo.function_for_webhook("secret-key-one")
